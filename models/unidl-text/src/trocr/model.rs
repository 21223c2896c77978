//! TrOCR's modules: the ViT/DeiT encoder, the TrOCR decoder and the
//! encoder–decoder with its output projection.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_nn::{
    AttentionMask, BatchNorm2d, BatchNorm2dConfig, KvCache, MultiHeadAttention,
    MultiHeadAttentionConfig,
};

use super::{Activation, PositionInit, TrOcrConfig, TrOcrDecoderConfig, TrOcrEncoderConfig};
use crate::TextError;

/// `transformers`' learned positions start at index 2 (fairseq's offset).
pub const POSITION_OFFSET: usize = 2;

fn linear(i: usize, o: usize, bias: bool, std: f64, device: &Device) -> Linear {
    LinearConfig::new(i, o)
        .with_bias(bias)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device)
}

fn layer_norm(d: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}

impl TrOcrEncoderConfig {
    /// `[positions, hidden]` row-major: zeros for `[CLS]` (and the
    /// distillation token), then per patch (raster order) sines and cosines
    /// of its row in the first half of the width and of its column in the
    /// second, at frequencies 1/10000^(k/(width/4)).
    fn sincos_positions(&self) -> Vec<f32> {
        let d = self.hidden_size;
        let [gh, gw] = self.grid();
        let specials = self.positions() - gh * gw;
        let quarter = d / 4;
        let mut v = vec![0.0f32; self.positions() * d];
        for r in 0..gh {
            for c in 0..gw {
                let row = &mut v[(specials + r * gw + c) * d..][..d];
                for (half, pos) in [(0, r), (1, c)] {
                    for k in 0..quarter {
                        let freq = 1.0 / 10000f64.powf(k as f64 / quarter.max(1) as f64);
                        let a = pos as f64 * freq;
                        row[half * d / 2 + k] = a.sin() as f32;
                        row[half * d / 2 + quarter + k] = a.cos() as f32;
                    }
                }
            }
        }
        v
    }

    fn init_encoder(&self, device: &Device) -> VitEncoder {
        let (d, std) = (self.hidden_size, 0.02);
        let p = self.patch_size.hw();
        let token = || {
            Param::from_tensor(Tensor::random(
                [1, 1, d],
                Distribution::Normal(0.0, std),
                device,
            ))
        };
        VitEncoder {
            embeddings: VitEmbeddings {
                cls_token: token(),
                distillation_token: self.distillation_token.then(token),
                position_embeddings: Param::from_tensor(match self.position_init {
                    PositionInit::Normal => Tensor::random(
                        [1, self.positions(), d],
                        Distribution::Normal(0.0, std),
                        device,
                    ),
                    PositionInit::Sincos2d => Tensor::from_data(
                        TensorData::new(self.sincos_positions(), [1, self.positions(), d]),
                        device,
                    ),
                }),
                stem: {
                    let mut c_in = self.num_channels;
                    self.conv_stem
                        .iter()
                        .map(|&c| {
                            let layer = StemLayer {
                                conv: Conv2dConfig::new([c_in, c], [3, 3])
                                    .with_stride([2, 2])
                                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                                    .with_bias(false)
                                    .init(device),
                                norm: BatchNorm2dConfig::new(c).init(device),
                            };
                            c_in = c;
                            layer
                        })
                        .collect()
                },
                patch_embeddings: {
                    let s = self.stem_scale();
                    let p = [p[0] / s, p[1] / s];
                    let c_in = self.conv_stem.last().copied().unwrap_or(self.num_channels);
                    Conv2dConfig::new([c_in, d], p).with_stride(p).init(device)
                },
                dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
            },
            layers: (0..self.num_hidden_layers)
                .map(|_| {
                    let mut attention = MultiHeadAttentionConfig::new(d, self.num_attention_heads)
                        .with_dropout(self.attention_probs_dropout_prob)
                        .init(device);
                    attention.query = linear(d, d, self.qkv_bias, std, device);
                    attention.key = linear(d, d, self.qkv_bias, std, device);
                    attention.value = linear(d, d, self.qkv_bias, std, device);
                    attention.output = linear(d, d, true, std, device);
                    VitLayer {
                        layernorm_before: layer_norm(d, self.layer_norm_eps, device),
                        attention,
                        layernorm_after: layer_norm(d, self.layer_norm_eps, device),
                        fc1: linear(d, self.intermediate_size, true, std, device),
                        fc2: linear(self.intermediate_size, d, true, std, device),
                        dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
                    }
                })
                .collect(),
            layernorm: layer_norm(d, self.layer_norm_eps, device),
            act: self.hidden_act,
            image_size: self.image_size.hw(),
            num_channels: self.num_channels,
        }
    }
}

impl TrOcrDecoderConfig {
    fn attention(&self, d_context: Option<usize>, device: &Device) -> MultiHeadAttention {
        let d = self.d_model;
        let std = self.init_std;
        let mut a = MultiHeadAttentionConfig::new(d, self.decoder_attention_heads)
            .with_d_context(d_context)
            .with_dropout(self.attention_dropout)
            .init(device);
        let c = d_context.unwrap_or(d);
        a.query = linear(d, d, true, std, device);
        a.key = linear(c, d, true, std, device);
        a.value = linear(c, d, true, std, device);
        a.output = linear(d, d, true, std, device);
        a
    }

    fn init_decoder(&self, device: &Device) -> TrOcrDecoder {
        let d = self.d_model;
        let std = self.init_std;
        let ln = || layer_norm(d, 1e-5, device);
        TrOcrDecoder {
            embed_tokens: EmbeddingConfig::new(self.vocab_size, d)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device),
            embed_positions: self.use_learned_position_embeddings.then(|| {
                EmbeddingConfig::new(self.max_position_embeddings + POSITION_OFFSET, d)
                    .with_initializer(Initializer::Normal { mean: 0.0, std })
                    .init(device)
            }),
            layernorm_embedding: self.layernorm_embedding.then(ln),
            layers: (0..self.decoder_layers)
                .map(|_| TrOcrDecoderLayer {
                    self_attn: self.attention(None, device),
                    self_attn_layer_norm: ln(),
                    encoder_attn: self.attention(self.cross_attention_hidden_size, device),
                    encoder_attn_layer_norm: ln(),
                    fc1: linear(d, self.decoder_ffn_dim, true, std, device),
                    fc2: linear(self.decoder_ffn_dim, d, true, std, device),
                    final_layer_norm: ln(),
                    dropout: DropoutConfig::new(self.dropout).init(),
                    activation_dropout: DropoutConfig::new(self.activation_dropout).init(),
                })
                .collect(),
            dropout: DropoutConfig::new(self.dropout).init(),
            act: self.activation_function,
            embed_scale: if self.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            pad: self.pad_token_id,
            max_positions: self.max_position_embeddings,
        }
    }
}

impl TrOcrConfig {
    /// The encoder–decoder with its output projection (fresh weights:
    /// normal, standard deviation 0.02 for the encoder, `init_std` for the decoder).
    pub fn init(&self, device: &Device) -> Result<TrOcr, TextError> {
        self.validate()?;
        let dec = &self.decoder;
        Ok(TrOcr {
            encoder: self.encoder.init_encoder(device),
            enc_to_dec_proj: self
                .projects_encoder()
                .then(|| linear(self.encoder.hidden_size, dec.d_model, true, 0.02, device)),
            decoder: dec.init_decoder(device),
            output_projection: (!dec.tie_word_embeddings)
                .then(|| linear(dec.d_model, dec.vocab_size, false, dec.init_std, device)),
            ctc_head: self
                .ctc_head
                .then(|| linear(self.encoder.hidden_size, dec.vocab_size, true, 0.02, device)),
            decoder_start: dec.decoder_start_token_id,
            pad: dec.pad_token_id,
        })
    }
}

/// The patch, `[CLS]` (and DeiT's distillation) token and position embeddings.
#[derive(Module, Debug)]
pub struct VitEmbeddings {
    /// `[1, 1, hidden]`.
    pub cls_token: Param<Tensor<3>>,
    /// `[1, 1, hidden]` (DeiT).
    pub distillation_token: Option<Param<Tensor<3>>>,
    /// `[1, positions, hidden]`.
    pub position_embeddings: Param<Tensor<3>>,
    /// The convolutional stem (`conv_stem`; empty for ViT's linear patches).
    pub stem: Vec<StemLayer>,
    /// The patch convolution (kernel = stride = patch, over the stem's
    /// output when there is one).
    pub patch_embeddings: Conv2d,
    dropout: Dropout,
}

/// One layer of the convolutional stem: 3×3 stride-2 convolution (no
/// bias), batch norm, ReLU.
#[derive(Module, Debug)]
pub struct StemLayer {
    /// The convolution.
    pub conv: Conv2d,
    /// Its batch norm (PyTorch's running statistics).
    pub norm: BatchNorm2d,
}

/// One pre-norm ViT block.
#[derive(Module, Debug)]
pub struct VitLayer {
    /// Before the attention.
    pub layernorm_before: LayerNorm,
    /// Self-attention (scaled).
    pub attention: MultiHeadAttention,
    /// Before the feed-forward.
    pub layernorm_after: LayerNorm,
    /// Feed-forward in.
    pub fc1: Linear,
    /// Feed-forward out.
    pub fc2: Linear,
    dropout: Dropout,
}

/// The ViT/DeiT encoder (no pooler).
#[derive(Module, Debug)]
pub struct VitEncoder {
    /// The embeddings.
    pub embeddings: VitEmbeddings,
    /// The blocks.
    pub layers: Vec<VitLayer>,
    /// The final layer norm.
    pub layernorm: LayerNorm,
    #[module(skip)]
    act: Activation,
    #[module(skip)]
    image_size: [usize; 2],
    #[module(skip)]
    num_channels: usize,
}

impl VitEncoder {
    /// The encoder's last hidden state.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, height, width]` (the configured size)
    /// - output: `[batch, positions, hidden]` (`[CLS]`, the distillation token, the patches row by row)
    pub fn forward(&self, pixels: Tensor<4>) -> Result<Tensor<3>, TextError> {
        let [b, c, h, w] = pixels.dims();
        if b == 0 || c != self.num_channels || [h, w] != self.image_size {
            return Err(TextError::Input {
                name: "pixel_values".into(),
                reason: format!(
                    "[{b}, {c}, {h}, {w}]: expected a non-empty batch of [{}, {}, {}] images",
                    self.num_channels, self.image_size[0], self.image_size[1]
                ),
            });
        }
        let e = &self.embeddings;
        let mut x = pixels;
        for layer in &e.stem {
            x = relu(layer.norm.forward(layer.conv.forward(x)));
        }
        let patches = e.patch_embeddings.forward(x); // [B, d, gh, gw]
        let [_, d, gh, gw] = patches.dims();
        let patches = patches.reshape([b, d, gh * gw]).swap_dims(1, 2);
        let mut parts = vec![e.cls_token.val().expand([b, 1, d])];
        if let Some(t) = &e.distillation_token {
            parts.push(t.val().expand([b, 1, d]));
        }
        parts.push(patches);
        let x = Tensor::cat(parts, 1) + e.position_embeddings.val();
        let mut x = e.dropout.forward(x);
        let none = AttentionMask::default();
        for layer in &self.layers {
            let a = layer
                .attention
                .forward(layer.layernorm_before.forward(x.clone()), None, &none);
            x = x + layer.dropout.forward(a);
            let h = layer.layernorm_after.forward(x.clone());
            let h = layer.fc2.forward(self.act.apply(layer.fc1.forward(h)));
            x = x + layer.dropout.forward(h);
        }
        Ok(self.layernorm.forward(x))
    }
}

/// One post-norm TrOCR decoder block.
#[derive(Module, Debug)]
pub struct TrOcrDecoderLayer {
    /// Causal self-attention.
    pub self_attn: MultiHeadAttention,
    /// After the self-attention's residual.
    pub self_attn_layer_norm: LayerNorm,
    /// Cross-attention over the encoder states.
    pub encoder_attn: MultiHeadAttention,
    /// After the cross-attention's residual.
    pub encoder_attn_layer_norm: LayerNorm,
    /// Feed-forward in.
    pub fc1: Linear,
    /// Feed-forward out.
    pub fc2: Linear,
    /// After the feed-forward's residual.
    pub final_layer_norm: LayerNorm,
    dropout: Dropout,
    activation_dropout: Dropout,
}

/// The TrOCR decoder (`TrOCRDecoder`), without the output projection.
#[derive(Module, Debug)]
pub struct TrOcrDecoder {
    /// Token embedding.
    pub embed_tokens: Embedding,
    /// Learned positions (`max_position_embeddings + 2` rows); `None`: sinusoidal.
    pub embed_positions: Option<Embedding>,
    /// After the embeddings.
    pub layernorm_embedding: Option<LayerNorm>,
    /// The blocks.
    pub layers: Vec<TrOcrDecoderLayer>,
    dropout: Dropout,
    #[module(skip)]
    act: Activation,
    #[module(skip)]
    embed_scale: f64,
    #[module(skip)]
    pad: usize,
    #[module(skip)]
    max_positions: usize,
}

/// Per decoder block: the self-attention's cache and the cross-attention's
/// projected encoder states.
#[derive(Debug, Clone, Default)]
pub struct TrOcrDecoderCache {
    self_attention: Vec<KvCache>,
    cross_attention: Vec<KvCache>,
}

impl TrOcrDecoderCache {
    /// Keeps batch rows `rows`, in that order (beam search).
    pub fn select(&self, rows: Tensor<1, Int>) -> TrOcrDecoderCache {
        let pick = |v: &Vec<KvCache>| v.iter().map(|c| c.select(rows.clone())).collect();
        TrOcrDecoderCache {
            self_attention: pick(&self.self_attention),
            cross_attention: pick(&self.cross_attention),
        }
    }

    /// Decoder steps cached so far.
    pub fn len(&self) -> usize {
        self.self_attention.first().map_or(0, KvCache::len)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// fairseq's sinusoidal table row for `position` (`sin` half, then `cos`
/// half, a zero column for odd widths; the padding row is zero).
fn sinusoid(position: usize, pad: usize, d: usize) -> Vec<f32> {
    let half = d / 2;
    let mut row = vec![0.0f32; d];
    if position == pad {
        return row;
    }
    let step = (10000f64).ln() / (half as f64 - 1.0);
    for i in 0..half {
        let a = position as f64 * (-(i as f64) * step).exp();
        row[i] = a.sin() as f32;
        row[half + i] = a.cos() as f32;
    }
    row
}

impl TrOcrDecoder {
    /// Token + position embeddings of `ids` that follow `past` cached steps.
    fn embed(&self, ids: Tensor<2, Int>, past: usize) -> Result<Tensor<3>, TextError> {
        let [b, t] = ids.dims();
        if b == 0 || t == 0 {
            return Err(TextError::Input {
                name: "decoder_input_ids".into(),
                reason: format!("[{b}, {t}] is empty"),
            });
        }
        if past + t > self.max_positions {
            return Err(TextError::Input {
                name: "decoder_input_ids".into(),
                reason: format!(
                    "{} positions exceed max_position_embeddings {}",
                    past + t,
                    self.max_positions
                ),
            });
        }
        let device = ids.device();
        let x = self
            .embed_tokens
            .forward(ids.clone())
            .mul_scalar(self.embed_scale);
        let d = x.dims()[2];
        let pos =
            match &self.embed_positions {
                Some(table) => {
                    let p: Vec<i64> = (0..t)
                        .map(|i| (past + i + POSITION_OFFSET) as i64)
                        .collect();
                    let p = Tensor::<1, Int>::from_data(TensorData::new(p, [t]), &device);
                    table.forward(p.unsqueeze::<2>()).expand([b, t, d])
                }
                None => {
                    // fairseq's positions: padding keeps `pad`, the others count
                    // from `pad + 1` (after the cached steps)
                    let v: Vec<i64> = ids.to_data().convert::<i64>().try_to_vec().map_err(|e| {
                        TextError::Input {
                            name: "decoder_input_ids".into(),
                            reason: format!("{e:?}"),
                        }
                    })?;
                    let mut rows = Vec::with_capacity(b * t * d);
                    for r in v.chunks(t) {
                        let mut seen = 0;
                        for &id in r {
                            let position = if id as usize == self.pad {
                                self.pad
                            } else {
                                seen += 1;
                                self.pad + past + seen
                            };
                            rows.extend(sinusoid(position, self.pad, d));
                        }
                    }
                    Tensor::<3>::from_data(TensorData::new(rows, [b, t, d]), &device)
                }
            };
        let mut x = x + pos;
        if let Some(norm) = &self.layernorm_embedding {
            x = norm.forward(x);
        }
        Ok(self.dropout.forward(x))
    }

    /// The decoder's last hidden state for `ids` over `encoder` states;
    /// with a `cache` the ids follow the cached steps (which grow by them).
    ///
    /// # Shapes
    /// - `ids`: `[batch, steps]`; `encoder`: `[batch, positions, d_model or cross width]`
    /// - output: `[batch, steps, d_model]`
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        encoder: Tensor<3>,
        mut cache: Option<&mut TrOcrDecoderCache>,
    ) -> Result<Tensor<3>, TextError> {
        let past = cache.as_ref().map_or(0, |c| c.len());
        if encoder.dims()[0] != ids.dims()[0] {
            return Err(TextError::Input {
                name: "decoder_input_ids".into(),
                reason: format!(
                    "batch {} differs from the encoder's {}",
                    ids.dims()[0],
                    encoder.dims()[0]
                ),
            });
        }
        let mut x = self.embed(ids, past)?;
        if let Some(c) = cache.as_deref_mut()
            && c.self_attention.is_empty()
        {
            c.self_attention = vec![KvCache::new(); self.layers.len()];
            c.cross_attention = vec![KvCache::new(); self.layers.len()];
        }
        let causal = AttentionMask {
            causal: true,
            ..Default::default()
        };
        let none = AttentionMask::default();
        for (i, layer) in self.layers.iter().enumerate() {
            let a = match cache.as_deref_mut() {
                Some(c) => {
                    layer
                        .self_attn
                        .forward_cached(x.clone(), &mut c.self_attention[i], &causal)
                }
                None => layer.self_attn.forward(x.clone(), None, &causal),
            };
            x = layer
                .self_attn_layer_norm
                .forward(x + layer.dropout.forward(a));
            let a = match cache.as_deref_mut() {
                Some(c) => layer.encoder_attn.forward_cross_cached(
                    x.clone(),
                    encoder.clone(),
                    &mut c.cross_attention[i],
                    &none,
                ),
                None => layer
                    .encoder_attn
                    .forward(x.clone(), Some(encoder.clone()), &none),
            };
            x = layer
                .encoder_attn_layer_norm
                .forward(x + layer.dropout.forward(a));
            let h = layer
                .activation_dropout
                .forward(self.act.apply(layer.fc1.forward(x.clone())));
            let h = layer.fc2.forward(h);
            x = layer.final_layer_norm.forward(x + layer.dropout.forward(h));
        }
        Ok(x)
    }
}

/// TrOCR (`transformers`' `VisionEncoderDecoderModel` with a ViT/DeiT
/// encoder and a `TrOCRForCausalLM` decoder).
#[derive(Module, Debug)]
pub struct TrOcr {
    /// The image encoder.
    pub encoder: VitEncoder,
    /// Encoder width → `d_model` when they differ.
    pub enc_to_dec_proj: Option<Linear>,
    /// The text decoder.
    pub decoder: TrOcrDecoder,
    /// `d_model → vocab` (no bias); `None`: tied to the token embedding.
    pub output_projection: Option<Linear>,
    /// Encoder width → vocab on every patch token (`ctc_head = true`):
    /// the CTC branch of the hybrid objective, unused by generation.
    pub ctc_head: Option<Linear>,
    #[module(skip)]
    decoder_start: usize,
    #[module(skip)]
    pad: usize,
}

impl TrOcr {
    /// The encoder's last hidden state (before `enc_to_dec_proj`).
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, height, width]` → `[batch, positions, encoder hidden]`
    pub fn encoder_states(&self, pixels: Tensor<4>) -> Result<Tensor<3>, TextError> {
        self.encoder.forward(pixels)
    }

    /// What the decoder's cross-attention reads: the encoder states,
    /// projected to `d_model` by `enc_to_dec_proj` where there is one.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, height, width]` → `[batch, positions, d_model or encoder hidden]`
    pub fn encode(&self, pixels: Tensor<4>) -> Result<Tensor<3>, TextError> {
        Ok(self.project(self.encoder.forward(pixels)?))
    }

    /// [`encode`](Self::encode) and, from the same encoder pass, the CTC
    /// head's log-probabilities (`None` without `ctc_head`).
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, height, width]`
    /// - output: `[batch, positions, d_model]` and `[batch, patches, vocab]`
    pub fn encode_with_ctc(
        &self,
        pixels: Tensor<4>,
    ) -> Result<(Tensor<3>, Option<Tensor<3>>), TextError> {
        let states = self.encoder.forward(pixels)?;
        let ctc = self.ctc_log_probs(states.clone());
        Ok((self.project(states), ctc))
    }

    /// `enc_to_dec_proj` where there is one.
    fn project(&self, states: Tensor<3>) -> Tensor<3> {
        match &self.enc_to_dec_proj {
            Some(p) => p.forward(states),
            None => states,
        }
    }

    fn logits(&self, y: Tensor<3>) -> Tensor<3> {
        match &self.output_projection {
            Some(p) => p.forward(y),
            None => {
                let [b, t, d] = y.dims();
                let w = self.decoder.embed_tokens.weight.val(); // [V, d]
                let v = w.dims()[0];
                y.reshape([b * t, d])
                    .matmul(w.transpose())
                    .reshape([b, t, v])
            }
        }
    }

    /// Vocabulary logits of every decoder position (teacher forcing).
    ///
    /// # Shapes
    /// - `encoded`: [`encode`](Self::encode)'s output; `decoder_ids`: `[batch, steps]`
    /// - output: `[batch, steps, vocab]`
    pub fn decode(
        &self,
        encoded: &Tensor<3>,
        decoder_ids: Tensor<2, Int>,
    ) -> Result<Tensor<3>, TextError> {
        let y = self.decoder.forward(decoder_ids, encoded.clone(), None)?;
        Ok(self.logits(y))
    }

    /// The logits of new decoder steps after those in `cache` (which grows
    /// by them): generation without recomputing the prefix.
    ///
    /// # Shapes
    /// - `decoder_ids`: `[batch, new steps]` → `[batch, new steps, vocab]`
    pub fn decode_step(
        &self,
        encoded: &Tensor<3>,
        decoder_ids: Tensor<2, Int>,
        cache: &mut TrOcrDecoderCache,
    ) -> Result<Tensor<3>, TextError> {
        let y = self
            .decoder
            .forward(decoder_ids, encoded.clone(), Some(cache))?;
        Ok(self.logits(y))
    }

    /// The decoder's inputs for `labels` (`transformers`' `shift_tokens_right`):
    /// the start token, then the labels but the last.
    ///
    /// # Shapes
    /// - `labels`: `[batch, steps]` → the same
    pub fn shift_right(&self, labels: Tensor<2, Int>) -> Tensor<2, Int> {
        let [b, t] = labels.dims();
        let start = Tensor::<2, Int>::full([b, 1], self.decoder_start as i64, &labels.device());
        Tensor::cat(vec![start, labels.narrow(1, 0, t - 1)], 1)
    }

    /// The CTC head's log-probabilities over the patch tokens of
    /// [`encoder_states`](Self::encoder_states)' output (the `[CLS]` and
    /// distillation tokens dropped), or `None` without a head.
    ///
    /// # Shapes
    /// - `states`: `[batch, positions, encoder hidden]` → `[batch, patches, vocab]`
    pub fn ctc_log_probs(&self, states: Tensor<3>) -> Option<Tensor<3>> {
        let head = self.ctc_head.as_ref()?;
        let [b, n, d] = states.dims();
        let skip = 1 + usize::from(self.encoder.embeddings.distillation_token.is_some());
        let patches = states.slice([0..b, skip..n, 0..d]);
        Some(burn::tensor::activation::log_softmax(
            head.forward(patches),
            2,
        ))
    }

    /// Teacher-forced logits and, with a CTC head, its log-probabilities,
    /// from one encoder pass.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, height, width]`; `decoder_ids`: `[batch, steps]`
    /// - output: `[batch, steps, vocab]` and `[batch, patches, vocab]`
    pub fn forward_with_ctc(
        &self,
        pixels: Tensor<4>,
        decoder_ids: Tensor<2, Int>,
    ) -> Result<(Tensor<3>, Option<Tensor<3>>), TextError> {
        let states = self.encoder.forward(pixels)?;
        let ctc = self.ctc_log_probs(states.clone());
        Ok((self.decode(&self.project(states), decoder_ids)?, ctc))
    }

    /// The padding id.
    pub fn pad_id(&self) -> usize {
        self.pad
    }

    /// Encodes images and decodes with teacher forcing.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, height, width]`; `decoder_ids`: `[batch, steps]`
    /// - output: `[batch, steps, vocab]`
    pub fn forward(
        &self,
        pixels: Tensor<4>,
        decoder_ids: Tensor<2, Int>,
    ) -> Result<Tensor<3>, TextError> {
        let encoded = self.encode(pixels)?;
        self.decode(&encoded, decoder_ids)
    }
}
