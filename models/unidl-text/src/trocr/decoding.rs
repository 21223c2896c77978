//! TrOCR's step-by-step decoding for `unidl_train::decoding::generate`: the
//! encoder runs once, the decoder steps through its key/value cache.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_train::{DecodingState, Seq2SeqModel, Seq2SeqSource, TrainError, row_index};

use super::{TrOcr, TrOcrDecoderCache};

/// What TrOCR keeps between decoding steps.
struct TrOcrState {
    encoded: Tensor<3>,
    /// The CTC head's log-probabilities per row (`ctc_head = true`).
    ctc: Option<Tensor<3>>,
    cache: TrOcrDecoderCache,
}

fn model_error(e: crate::TextError) -> TrainError {
    TrainError::Model(e.to_string())
}

impl Seq2SeqModel for TrOcr {
    /// Teacher forcing: the decoder ids are the task's `[BOS] y` (the mask
    /// is not needed: the decoder is causal and padded positions are
    /// ignored by the loss).
    /// A token source or images of another size than the configured one
    /// are errors.
    fn seq2seq_logits(
        &self,
        source: &Seq2SeqSource,
        decoder_ids: Tensor<2, Int>,
        _decoder_mask: Tensor<2, Bool>,
    ) -> Result<Tensor<3>, TrainError> {
        let pixels = source.images("TrOCR")?;
        self.forward(pixels, decoder_ids).map_err(model_error)
    }

    /// The same logits and the CTC head's log-probabilities (one encoder pass).
    fn seq2seq_logits_and_ctc(
        &self,
        source: &Seq2SeqSource,
        decoder_ids: Tensor<2, Int>,
        _decoder_mask: Tensor<2, Bool>,
    ) -> Result<(Tensor<3>, Option<Tensor<3>>), TrainError> {
        let pixels = source.images("TrOCR")?;
        self.forward_with_ctc(pixels, decoder_ids)
            .map_err(model_error)
    }

    /// The CTC head's log-probabilities kept by `begin_decoding` (one
    /// encoder pass for both decoders).
    fn decoding_ctc_log_probs(
        &self,
        state: &mut DecodingState,
    ) -> Result<Option<Tensor<3>>, TrainError> {
        Ok(trocr_state(state)?.ctc.clone())
    }

    fn begin_decoding(&self, source: &Seq2SeqSource) -> Result<DecodingState, TrainError> {
        let pixels = source.images("TrOCR")?;
        let (encoded, ctc) = self.encode_with_ctc(pixels).map_err(model_error)?;
        Ok(DecodingState::Model(Box::new(TrOcrState {
            encoded,
            ctc,
            cache: TrOcrDecoderCache::default(),
        })))
    }

    fn decode_next(
        &self,
        state: &mut DecodingState,
        tokens: &[u32],
    ) -> Result<Tensor<2>, TrainError> {
        let s = trocr_state(state)?;
        let device = s.encoded.device();
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [tokens.len(), 1]), &device);
        let logits = self
            .decode_step(&s.encoded, ids, &mut s.cache)
            .map_err(model_error)?; // [B, 1, V]
        let [b, _, v] = logits.dims();
        Ok(logits.reshape([b, v]))
    }

    fn reorder(
        &self,
        mut state: DecodingState,
        rows: &[usize],
    ) -> Result<DecodingState, TrainError> {
        let s = trocr_state(&mut state)?;
        let index = row_index(rows, &s.encoded.device());
        let next = TrOcrState {
            encoded: s.encoded.clone().select(0, index.clone()),
            ctc: s.ctc.as_ref().map(|c| c.clone().select(0, index.clone())),
            cache: s.cache.select(index),
        };
        Ok(DecodingState::Model(Box::new(next)))
    }
}

fn trocr_state(state: &mut DecodingState) -> Result<&mut TrOcrState, TrainError> {
    match state {
        DecodingState::Model(b) => b
            .downcast_mut::<TrOcrState>()
            .ok_or_else(|| TrainError::Model("not a TrOCR decoding state".into())),
        DecodingState::Recompute { .. } => {
            Err(TrainError::Model("not a TrOCR decoding state".into()))
        }
    }
}
