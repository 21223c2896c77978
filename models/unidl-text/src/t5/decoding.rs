//! T5's step-by-step decoding for `unidl_train::decoding::generate`: the
//! encoder runs once, the decoder steps through its key/value cache.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_train::{DecodingState, Seq2SeqModel, Seq2SeqSource, TrainError, row_index};

use super::{T5DecoderCache, T5Encoded, T5ForConditionalGeneration};

/// What T5 keeps between decoding steps: the encoder's output and the
/// decoder's caches.
struct T5State {
    encoded: T5Encoded,
    cache: T5DecoderCache,
}

impl Seq2SeqModel for T5ForConditionalGeneration {
    /// Teacher forcing: the decoder ids are the task's `[BOS] y` (T5's
    /// start token is the padding id; the mask is not needed: the decoder
    /// is causal and padded positions are ignored by the loss).
    fn seq2seq_logits(
        &self,
        source: &Seq2SeqSource,
        decoder_ids: Tensor<2, Int>,
        _decoder_mask: Tensor<2, Bool>,
    ) -> Result<Tensor<3>, TrainError> {
        let (ids, mask) = source.tokens("T5")?;
        Ok(self.forward(ids, mask, decoder_ids))
    }

    fn begin_decoding(&self, source: &Seq2SeqSource) -> Result<DecodingState, TrainError> {
        let (ids, mask) = source.tokens("T5")?;
        Ok(DecodingState::Model(Box::new(T5State {
            encoded: self.encode(ids, mask),
            cache: T5DecoderCache::default(),
        })))
    }

    fn decode_next(
        &self,
        state: &mut DecodingState,
        tokens: &[u32],
    ) -> Result<Tensor<2>, TrainError> {
        let s = t5_state(state)?;
        let device = s.encoded.hidden.device();
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [tokens.len(), 1]), &device);
        let logits = self.decode_step(&s.encoded, ids, &mut s.cache); // [B, 1, V]
        let [b, _, v] = logits.dims();
        Ok(logits.reshape([b, v]))
    }

    fn reorder(
        &self,
        mut state: DecodingState,
        rows: &[usize],
    ) -> Result<DecodingState, TrainError> {
        let s = t5_state(&mut state)?;
        let index = row_index(rows, &s.encoded.hidden.device());
        let next = T5State {
            encoded: T5Encoded {
                hidden: s.encoded.hidden.clone().select(0, index.clone()),
                padding: s
                    .encoded
                    .padding
                    .clone()
                    .int()
                    .select(0, index.clone())
                    .bool(),
            },
            cache: s.cache.select(index),
        };
        Ok(DecodingState::Model(Box::new(next)))
    }
}

fn t5_state(state: &mut DecodingState) -> Result<&mut T5State, TrainError> {
    match state {
        DecodingState::Model(b) => b
            .downcast_mut::<T5State>()
            .ok_or_else(|| TrainError::Model("not a T5 decoding state".into())),
        DecodingState::Recompute { .. } => Err(TrainError::Model("not a T5 decoding state".into())),
    }
}
