//! ByteNet's step-by-step decoding for `unidl_train::decoding::generate`:
//! the encoder runs once, each step runs one position through the decoder
//! with every block's convolution history ([`ByteNetDecoderCache`]).

use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_train::{DecodingState, Seq2SeqModel, Seq2SeqSource, TrainError};

use super::{ByteNet, ByteNetDecoderCache, ByteNetEncoded};

/// What ByteNet keeps between decoding steps.
struct ByteNetState {
    encoded: ByteNetEncoded,
    cache: ByteNetDecoderCache,
}

fn model_error(e: crate::TextError) -> TrainError {
    TrainError::Model(format!("ByteNet: {e}"))
}

impl Seq2SeqModel for ByteNet {
    /// Teacher forcing: the decoder ids are the task's `[BOS] y` (the mask
    /// is not needed: the decoder is causal and padded positions are
    /// ignored by the loss).
    /// An image source or ids the model cannot read are errors.
    fn seq2seq_logits(
        &self,
        source: &Seq2SeqSource,
        decoder_ids: Tensor<2, Int>,
        _decoder_mask: Tensor<2, Bool>,
    ) -> Result<Tensor<3>, TrainError> {
        let (ids, mask) = source.tokens("ByteNet")?;
        self.forward(ids, mask, decoder_ids).map_err(model_error)
    }

    fn begin_decoding(&self, source: &Seq2SeqSource) -> Result<DecodingState, TrainError> {
        let (ids, mask) = source.tokens("ByteNet")?;
        Ok(DecodingState::Model(Box::new(ByteNetState {
            encoded: self.encode(ids, mask).map_err(model_error)?,
            cache: ByteNetDecoderCache::default(),
        })))
    }

    fn decode_next(
        &self,
        state: &mut DecodingState,
        tokens: &[u32],
    ) -> Result<Tensor<2>, TrainError> {
        let s = bytenet_state(state)?;
        let device = s.encoded.hidden.device();
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
        let s = bytenet_state(&mut state)?;
        if let Some(&r) = rows.iter().find(|&&r| r >= s.encoded.lengths.len()) {
            return Err(TrainError::Model(format!(
                "ByteNet: row {r} of {} decoded rows",
                s.encoded.lengths.len()
            )));
        }
        Ok(DecodingState::Model(Box::new(ByteNetState {
            encoded: s.encoded.select(rows),
            cache: s.cache.select(rows),
        })))
    }
}

fn bytenet_state(state: &mut DecodingState) -> Result<&mut ByteNetState, TrainError> {
    match state {
        DecodingState::Model(b) => b
            .downcast_mut::<ByteNetState>()
            .ok_or_else(|| TrainError::Model("not a ByteNet decoding state".into())),
        DecodingState::Recompute { .. } => {
            Err(TrainError::Model("not a ByteNet decoding state".into()))
        }
    }
}
