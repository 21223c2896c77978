//! ByteNet's modules: the residual block, the two stacks, dynamic unfolding
//! and the decoder's per-block convolution history.
//!
//! Activations are channels-last, `[batch, positions, channels]`, so that
//! the layer norms normalise over channels directly; the convolutions keep
//! PyTorch's `Conv1d` weights (`[out, in, k]`) and run as matrix products
//! over their `k` taps (1×1 convolutions are plain products).

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::linear;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_backend::Device;

use super::ByteNetConfig;
use crate::TextError;

impl ByteNetConfig {
    fn block(&self, i: usize, decoder: bool, device: &Device) -> ByteNetBlock {
        let (d, two_d) = (self.hidden_units, self.d_model());
        let k = if decoder {
            self.decoder_kernel_size
        } else {
            self.encoder_kernel_size
        };
        let norm = |width| {
            LayerNormConfig::new(width)
                .with_epsilon(self.layer_norm_epsilon)
                .init(device)
        };
        ByteNetBlock {
            norm1: norm(two_d),
            reduce: Conv1dConfig::new(two_d, d, 1).init(device),
            norm2: norm(d),
            conv: Conv1dConfig::new(d, d, k)
                .with_dilation(self.dilation(i))
                .init(device),
            norm3: norm(d),
            expand: Conv1dConfig::new(d, two_d, 1).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            causal: decoder,
        }
    }

    /// ByteNet with PyTorch's default initialisation (embeddings N(0, 1),
    /// convolutions uniform in ±fan_in^-1/2, layer norms 1 and 0).
    pub fn init(&self, device: &Device) -> Result<ByteNet, TextError> {
        self.validate()?;
        let (v, two_d) = (self.vocab_size, self.d_model());
        Ok(ByteNet {
            source_embedding: EmbeddingConfig::new(v, two_d).init(device),
            encoder: (0..self.encoder_blocks)
                .map(|i| self.block(i, false, device))
                .collect(),
            target_embedding: EmbeddingConfig::new(v, two_d).init(device),
            decoder_input: Conv1dConfig::new(2 * two_d, two_d, 1).init(device),
            decoder: (0..self.decoder_blocks)
                .map(|i| self.block(i, true, device))
                .collect(),
            output_hidden: Conv1dConfig::new(two_d, two_d, 1).init(device),
            output: Conv1dConfig::new(two_d, v, 1).init(device),
            config: self.clone(),
        })
    }
}

/// A 1×1 convolution on channels-last input.
///
/// # Shapes
/// - `x`: `[batch, positions, in]` → `[batch, positions, out]`
fn pointwise(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    let [o, i, _] = conv.weight.dims();
    let w = conv.weight.val().reshape([o, i]).transpose();
    linear(x, w, conv.bias.as_ref().map(|b| b.val()))
}

/// A dilated convolution without padding on channels-last input: output
/// `t` reads `padded[t + j·dilation]` for the taps `j = 0..k` (so the
/// caller's padding decides whether it is centred or causal).
///
/// # Shapes
/// - `padded`: `[batch, out_len + (k − 1)·dilation, in]` → `[batch, out_len, out]`
fn dilated(conv: &Conv1d, padded: Tensor<3>, out_len: usize) -> Tensor<3> {
    let [o, i, k] = conv.weight.dims();
    if k == 1 {
        return pointwise(conv, padded);
    }
    let [b, _, _] = padded.dims();
    let taps: Vec<Tensor<3>> = (0..k)
        .map(|j| padded.clone().narrow(1, j * conv.dilation, out_len))
        .collect();
    // [b, t, in, k] flattened as the weight's [in, k]
    let x = Tensor::stack::<4>(taps, 3).reshape([b, out_len, i * k]);
    let w = conv.weight.val().reshape([o, i * k]).transpose();
    linear(x, w, conv.bias.as_ref().map(|b| b.val()))
}

fn zeros(b: usize, t: usize, c: usize, device: &Device) -> Tensor<3> {
    Tensor::zeros([b, t, c], device)
}

/// One residual block (the paper's Fig. 3, left, for translation): layer
/// norm → ReLU → 1×1 convolution (2d → d) → layer norm → ReLU → k-wide
/// dilated convolution (d → d; causal in the decoder) → layer norm → ReLU →
/// 1×1 convolution (d → 2d), added to the input.
#[derive(Module, Debug)]
pub struct ByteNetBlock {
    /// Layer norm over the 2d input channels.
    pub norm1: LayerNorm,
    /// 1×1 convolution 2d → d.
    pub reduce: Conv1d,
    /// Layer norm over d channels.
    pub norm2: LayerNorm,
    /// The k-wide dilated convolution d → d.
    pub conv: Conv1d,
    /// Layer norm over d channels.
    pub norm3: LayerNorm,
    /// 1×1 convolution d → 2d.
    pub expand: Conv1d,
    dropout: Dropout,
    #[module(skip)]
    causal: bool,
}

impl ByteNetBlock {
    /// Positions the convolution reads beyond the one it writes: `(k − 1)·dilation`.
    pub fn span(&self) -> usize {
        (self.conv.kernel_size - 1) * self.conv.dilation
    }

    /// Whether the convolution is causal (a decoder block).
    pub fn is_causal(&self) -> bool {
        self.causal
    }

    fn reduce_branch(&self, x: Tensor<3>) -> Tensor<3> {
        let h = pointwise(&self.reduce, relu(self.norm1.forward(x)));
        relu(self.norm2.forward(h))
    }

    fn expand_branch(&self, x: Tensor<3>, c: Tensor<3>) -> Tensor<3> {
        let h = pointwise(&self.expand, relu(self.norm3.forward(c)));
        x + self.dropout.forward(h)
    }

    /// The encoder's block: a centred convolution that reads zeros outside
    /// `valid` (1 on the unfolded source, 0 beyond it), so padding never
    /// reaches a real position.
    ///
    /// # Shapes
    /// - `x`: `[batch, positions, 2d]`, `valid`: `[batch, positions, 1]` → `[batch, positions, 2d]`
    pub fn forward(&self, x: Tensor<3>, valid: Tensor<3>) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let h = self.reduce_branch(x.clone()) * valid;
        let half = self.span() / 2;
        let c = if half == 0 {
            dilated(&self.conv, h, t)
        } else {
            let d = h.dims()[2];
            let z = zeros(b, half, d, &h.device());
            dilated(&self.conv, Tensor::cat(vec![z.clone(), h, z], 1), t)
        };
        self.expand_branch(x, c)
    }

    /// The decoder's block: a causal convolution whose `history` holds the
    /// last `span` inputs of its convolution before these positions (zeros
    /// at the start), updated to the last `span` after them.
    ///
    /// # Shapes
    /// - `x`: `[batch, new positions, 2d]`, `history`: `[batch, span, d]` (none when `span` is 0)
    /// - output: `[batch, new positions, 2d]`
    pub fn forward_causal(&self, x: Tensor<3>, history: &mut Option<Tensor<3>>) -> Tensor<3> {
        let [_, t, _] = x.dims();
        let h = self.reduce_branch(x.clone());
        let c = match history.take() {
            None => dilated(&self.conv, h, t),
            Some(past) => {
                let span = past.dims()[1];
                let padded = Tensor::cat(vec![past, h], 1);
                *history = Some(padded.clone().narrow(1, t, span));
                dilated(&self.conv, padded, t)
            }
        };
        self.expand_branch(x, c)
    }
}

/// The encoder's output, what the decoder unfolds over.
#[derive(Debug, Clone)]
pub struct ByteNetEncoded {
    /// `[batch, unfolded positions, 2d]`, zero at each row's positions ≥ t̂.
    pub hidden: Tensor<3>,
    /// Each row's unfolded length t̂ = ⌈a·|s| + b⌉.
    pub lengths: Vec<usize>,
}

impl ByteNetEncoded {
    /// Keeps batch rows `rows`, in that order (beam search).
    pub fn select(&self, rows: &[usize]) -> ByteNetEncoded {
        let index = unidl_train::row_index(rows, &self.hidden.device());
        ByteNetEncoded {
            hidden: self.hidden.clone().select(0, index),
            lengths: rows.iter().map(|&r| self.lengths[r]).collect(),
        }
    }

    /// Columns `offset..offset + n` of the encoder output, zero beyond its
    /// length (dynamic unfolding past t̂).
    ///
    /// # Shapes
    /// → `[batch, n, 2d]`
    pub fn columns(&self, offset: usize, n: usize) -> Tensor<3> {
        let [b, l, d] = self.hidden.dims();
        let device = self.hidden.device();
        if offset >= l {
            return zeros(b, n, d, &device);
        }
        let take = n.min(l - offset);
        let part = self.hidden.clone().narrow(1, offset, take);
        if take == n {
            part
        } else {
            Tensor::cat(vec![part, zeros(b, n - take, d, &device)], 1)
        }
    }
}

/// Per decoder block, the last inputs of its causal convolution: what
/// step-by-step decoding needs to continue without re-running the prefix.
#[derive(Debug, Clone, Default)]
pub struct ByteNetDecoderCache {
    history: Vec<Option<Tensor<3>>>,
    steps: usize,
}

impl ByteNetDecoderCache {
    /// Decoder positions consumed so far.
    pub fn len(&self) -> usize {
        self.steps
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.steps == 0
    }

    /// Keeps batch rows `rows`, in that order (beam search).
    pub fn select(&self, rows: &[usize]) -> ByteNetDecoderCache {
        let index = |t: &Tensor<3>| unidl_train::row_index(rows, &t.device());
        ByteNetDecoderCache {
            history: self
                .history
                .iter()
                .map(|h| h.as_ref().map(|t| t.clone().select(0, index(t))))
                .collect(),
            steps: self.steps,
        }
    }
}

/// ByteNet (Kalchbrenner et al. 2016) for translation: see the
/// [module documentation](super).
#[derive(Module, Debug)]
pub struct ByteNet {
    /// `[vocab, 2d]`.
    pub source_embedding: Embedding,
    /// The encoder's blocks (centred dilated convolutions).
    pub encoder: Vec<ByteNetBlock>,
    /// `[vocab, 2d]`.
    pub target_embedding: Embedding,
    /// 1×1 convolution 4d → 2d of `[target embedding; source column]`.
    pub decoder_input: Conv1d,
    /// The decoder's blocks (causal dilated convolutions).
    pub decoder: Vec<ByteNetBlock>,
    /// The head's 1×1 convolution 2d → 2d (followed by ReLU).
    pub output_hidden: Conv1d,
    /// The head's 1×1 convolution 2d → vocab: the logits.
    pub output: Conv1d,
    #[module(skip)]
    config: ByteNetConfig,
}

fn input_error(name: &str, reason: String) -> TextError {
    TextError::Input {
        name: name.into(),
        reason,
    }
}

impl ByteNet {
    /// The architecture it was built with.
    pub fn config(&self) -> &ByteNetConfig {
        &self.config
    }

    fn check_ids(&self, ids: &Tensor<2, Int>, name: &str) -> Result<(), TextError> {
        let [b, t] = ids.dims();
        if b == 0 || t == 0 {
            return Err(input_error(name, format!("empty ([{b}, {t}])")));
        }
        let v = ids
            .clone()
            .try_into_vec_as::<i64>()
            .map_err(|e| input_error(name, format!("unreadable: {e:?}")))?;
        let vocab = self.config.vocab_size as i64;
        if let Some(bad) = v.iter().find(|&&x| x < 0 || x >= vocab) {
            return Err(input_error(
                name,
                format!("id {bad} is outside the vocabulary (0..{vocab})"),
            ));
        }
        Ok(())
    }

    /// Encodes source ids; `mask` is true on real tokens, which come first
    /// in each row (padding at the end). Each row is unfolded to
    /// t̂ = ⌈a·|s| + b⌉ positions: its embedding is zero beyond `|s|`, its
    /// convolutions read zeros beyond t̂, its output is zero beyond t̂.
    ///
    /// # Shapes
    /// - `ids`, `mask`: `[batch, source tokens]` → hidden `[batch, max(source tokens, max t̂), 2d]`
    ///
    /// # Errors
    /// [`TextError::Input`] for an empty batch, ids outside the vocabulary,
    /// a mask of another shape or with a real token after padding.
    pub fn encode(
        &self,
        ids: Tensor<2, Int>,
        mask: Tensor<2, Bool>,
    ) -> Result<ByteNetEncoded, TextError> {
        let [b, s] = ids.dims();
        if mask.dims() != [b, s] {
            return Err(input_error(
                "mask",
                format!("shape {:?} is not the ids' [{b}, {s}]", mask.dims()),
            ));
        }
        self.check_ids(&ids, "ids")?;
        let m = mask
            .clone()
            .int()
            .try_into_vec_as::<i64>()
            .map_err(|e| input_error("mask", format!("unreadable: {e:?}")))?;
        let mut source_lengths = Vec::with_capacity(b);
        for (r, row) in m.chunks(s).enumerate() {
            let n = row.iter().take_while(|&&x| x != 0).count();
            if row[n..].iter().any(|&x| x != 0) {
                return Err(input_error(
                    "mask",
                    format!("row {r} has a real token after padding (padding must come last)"),
                ));
            }
            source_lengths.push(n);
        }
        let lengths: Vec<usize> = source_lengths
            .iter()
            .map(|&n| self.config.unfolded_length(n))
            .collect();
        let l = lengths.iter().copied().max().unwrap_or(0).max(s);
        let device = ids.device();
        let x = self.source_embedding.forward(ids) * mask.float().unsqueeze_dim::<3>(2);
        let mut x = if l > s {
            let d = x.dims()[2];
            Tensor::cat(vec![x, zeros(b, l - s, d, &device)], 1)
        } else {
            x
        };
        let valid: Vec<f32> = lengths
            .iter()
            .flat_map(|&n| (0..l).map(move |t| if t < n { 1.0 } else { 0.0 }))
            .collect();
        let valid =
            Tensor::<2>::from_data(TensorData::new(valid, [b, l]), &device).unsqueeze_dim::<3>(2);
        for block in &self.encoder {
            x = block.forward(x, valid.clone());
        }
        Ok(ByteNetEncoded {
            hidden: x * valid,
            lengths,
        })
    }

    /// The logits of new decoder positions given the positions in `cache`
    /// (which grows by them): decoding step by step without re-running the
    /// prefix; with an empty cache, teacher forcing over `decoder_ids`.
    /// Position `t` reads `[embedding of decoder_ids[t]; encoder column t]`
    /// (zeros past the encoder's length) and predicts the next target token.
    ///
    /// # Shapes
    /// - `decoder_ids`: `[batch, new positions]` → `[batch, new positions, vocab]`
    ///
    /// # Errors
    /// [`TextError::Input`] for ids outside the vocabulary, an empty input,
    /// or a batch other than the encoder's or the cache's.
    pub fn decode_step(
        &self,
        encoded: &ByteNetEncoded,
        decoder_ids: Tensor<2, Int>,
        cache: &mut ByteNetDecoderCache,
    ) -> Result<Tensor<3>, TextError> {
        let [b, t] = decoder_ids.dims();
        let rows = encoded.hidden.dims()[0];
        if b != rows {
            return Err(input_error(
                "decoder_ids",
                format!("{b} rows for {rows} encoded sources"),
            ));
        }
        self.check_ids(&decoder_ids, "decoder_ids")?;
        let device = decoder_ids.device();
        if cache.history.is_empty() {
            cache.history = self
                .decoder
                .iter()
                .map(|block| {
                    let span = block.span();
                    (span > 0).then(|| zeros(b, span, self.config.hidden_units, &device))
                })
                .collect();
        } else if let Some(Some(h)) = cache.history.first()
            && h.dims()[0] != b
        {
            return Err(input_error(
                "decoder_ids",
                format!("{b} rows for a cache of {}", h.dims()[0]),
            ));
        }
        let y = self.target_embedding.forward(decoder_ids);
        let src = encoded.columns(cache.steps, t);
        let mut y = pointwise(&self.decoder_input, Tensor::cat(vec![y, src], 2));
        for (block, history) in self.decoder.iter().zip(cache.history.iter_mut()) {
            y = block.forward_causal(y, history);
        }
        cache.steps += t;
        let h = relu(pointwise(&self.output_hidden, y));
        Ok(pointwise(&self.output, h))
    }

    /// Vocabulary logits of every decoder position (teacher forcing).
    ///
    /// # Shapes
    /// - `decoder_ids`: `[batch, target tokens]` → `[batch, target tokens, vocab]`
    ///
    /// # Errors
    /// As [`decode_step`](Self::decode_step).
    pub fn decode(
        &self,
        encoded: &ByteNetEncoded,
        decoder_ids: Tensor<2, Int>,
    ) -> Result<Tensor<3>, TextError> {
        self.decode_step(encoded, decoder_ids, &mut ByteNetDecoderCache::default())
    }

    /// Encodes and decodes with teacher forcing: `decoder_ids` are `[BOS] y`,
    /// position `t` predicts `y_t` (`[EOS]` after the last).
    ///
    /// # Shapes
    /// - `ids`, `mask`: `[batch, source tokens]`; `decoder_ids`: `[batch, target tokens]`
    /// - output: `[batch, target tokens, vocab]`
    ///
    /// # Errors
    /// As [`encode`](Self::encode) and [`decode`](Self::decode).
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        mask: Tensor<2, Bool>,
        decoder_ids: Tensor<2, Int>,
    ) -> Result<Tensor<3>, TextError> {
        let encoded = self.encode(ids, mask)?;
        self.decode(&encoded, decoder_ids)
    }
}
