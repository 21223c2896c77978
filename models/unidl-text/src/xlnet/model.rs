//! XLNet's modules: the feed-forward block, the layer, the encoder with
//! both attention streams, and the sequence classifier.

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::activation::{gelu, gelu_approximate, relu, silu, tanh};
use burn::tensor::{Bool, Int, Tensor};
use unidl_backend::Device;
use unidl_nn::{
    RelativeAttention, RelativeAttentionConfig, RelativeContext, segment_matrix,
    sinusoid_relative_positions,
};

use super::{FfActivation, XLNetConfig};
use crate::TextError;

impl FfActivation {
    fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            FfActivation::Gelu => gelu(x),
            FfActivation::Relu => relu(x),
            FfActivation::GeluNew => gelu_approximate(x),
            FfActivation::Silu => silu(x),
        }
    }
}

impl XLNetConfig {
    fn normal(&self) -> Initializer {
        Initializer::Normal {
            mean: 0.0,
            std: self.initializer_range,
        }
    }

    /// A dense layer with normal weights and a zero bias, as `transformers` initialises.
    fn linear(&self, i: usize, o: usize, device: &Device) -> Linear {
        let mut l = LinearConfig::new(i, o)
            .with_initializer(self.normal())
            .init(device);
        l.bias = Some(Param::from_tensor(Tensor::zeros([o], device)));
        l
    }

    fn norm(&self, device: &Device) -> LayerNorm {
        LayerNormConfig::new(self.d_model)
            .with_epsilon(self.layer_norm_eps)
            .init(device)
    }

    fn layer(&self, device: &Device) -> XLNetLayer {
        XLNetLayer {
            attention: RelativeAttentionConfig::new(self.d_model, self.n_head, self.head_width())
                .with_dropout(self.dropout)
                .with_initializer_std(self.initializer_range)
                .init(device),
            attention_norm: self.norm(device),
            ff: XLNetFeedForward {
                layer_1: self.linear(self.d_model, self.d_inner, device),
                layer_2: self.linear(self.d_inner, self.d_model, device),
                layer_norm: self.norm(device),
                dropout: DropoutConfig::new(self.dropout).init(),
                act: self.ff_activation,
            },
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }

    /// The encoder (`transformers`' `XLNetModel`), initialised as
    /// `transformers` does (normal weights with `initializer_range`, zero
    /// biases, unit norms).
    pub fn init_model(&self, device: &Device) -> Result<XLNetModel, TextError> {
        self.validate()?;
        Ok(XLNetModel {
            word_embedding: EmbeddingConfig::new(self.vocab_size, self.d_model)
                .with_initializer(self.normal())
                .init(device),
            mask_emb: self.normal().init([1, 1, self.d_model], device),
            layers: (0..self.n_layer).map(|_| self.layer(device)).collect(),
            dropout: DropoutConfig::new(self.dropout).init(),
            d_model: self.d_model,
            clamp_len: self.clamp().unwrap_or(0),
        })
    }

    /// XLNet with a sequence classifier of `num_labels` classes
    /// (`transformers`' `XLNetForSequenceClassification`).
    pub fn init_classifier(
        &self,
        num_labels: usize,
        device: &Device,
    ) -> Result<XLNetForSequenceClassification, TextError> {
        if num_labels == 0 {
            return Err(TextError::Config {
                key: "num_labels".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(XLNetForSequenceClassification {
            transformer: self.init_model(device)?,
            summary: self.linear(self.d_model, self.d_model, device),
            summary_dropout: DropoutConfig::new(self.summary_last_dropout).init(),
            logits_proj: self.linear(self.d_model, num_labels, device),
        })
    }
}

/// The position-wise feed-forward block with its residual connection and
/// layer norm (`ff`).
#[derive(Module, Debug)]
pub struct XLNetFeedForward {
    /// `layer_1`, `d_model → d_inner`.
    pub layer_1: Linear,
    /// `layer_2`, `d_inner → d_model`.
    pub layer_2: Linear,
    /// `layer_norm`.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
    #[module(skip)]
    act: FfActivation,
}

impl XLNetFeedForward {
    /// `norm(x + W₂ act(W₁ x))`.
    ///
    /// # Shapes
    /// - `x`: `[batch, tokens, d_model]` → the same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self
            .dropout
            .forward(self.act.apply(self.layer_1.forward(x.clone())));
        let h = self.dropout.forward(self.layer_2.forward(h));
        self.layer_norm.forward(h + x)
    }
}

/// One post-norm layer: relative attention → add & norm → feed-forward
/// (with its add & norm), applied to each stream with the same weights.
#[derive(Module, Debug)]
pub struct XLNetLayer {
    /// `rel_attn`'s projections and relative biases.
    pub attention: RelativeAttention,
    /// `rel_attn.layer_norm`.
    pub attention_norm: LayerNorm,
    /// `ff`.
    pub ff: XLNetFeedForward,
    dropout: Dropout,
}

impl XLNetLayer {
    /// The content stream.
    ///
    /// # Shapes
    /// - `h`: `[batch, tokens, d_model]` → the same
    pub fn forward(&self, h: Tensor<3>, ctx: &RelativeContext) -> Tensor<3> {
        let a = self.attention.forward(h.clone(), ctx);
        self.ff
            .forward(self.attention_norm.forward(self.dropout.forward(a) + h))
    }

    /// Both streams (see [`RelativeAttention::forward_two_stream`]).
    ///
    /// # Shapes
    /// - `h`: `[batch, tokens, d_model]`, `g`: `[batch, predictions, d_model]`,
    ///   `target_mapping`: `[batch, predictions, tokens]` → (`h`'s, `g`'s shape)
    pub fn forward_two_stream(
        &self,
        h: Tensor<3>,
        g: Tensor<3>,
        target_mapping: Option<Tensor<3>>,
        ctx: &RelativeContext,
    ) -> (Tensor<3>, Tensor<3>) {
        let (ah, ag) = self
            .attention
            .forward_two_stream(h.clone(), g.clone(), target_mapping, ctx);
        let h = self.attention_norm.forward(self.dropout.forward(ah) + h);
        let g = self.attention_norm.forward(self.dropout.forward(ag) + g);
        (self.ff.forward(h), self.ff.forward(g))
    }
}

/// What [`XLNetModel::forward_two_stream`] returns.
#[derive(Debug, Clone)]
pub struct XLNetTwoStreamOutput {
    /// The content stream's last hidden state, `[batch, tokens, d_model]`.
    pub content: Tensor<3>,
    /// The query stream's, one row per prediction, `[batch, predictions,
    /// d_model]` (what `transformers` returns as `last_hidden_state` given a
    /// `target_mapping`).
    pub query: Tensor<3>,
}

/// The XLNet encoder (`transformers`' `XLNetModel`): word embeddings (no
/// absolute positions), then layers of relative attention whose scores add
/// content, relative-position and segment terms.
#[derive(Module, Debug)]
pub struct XLNetModel {
    /// `word_embedding`, `[vocab, d_model]`.
    pub word_embedding: Embedding,
    /// `mask_emb`, `[1, 1, d_model]`: the query stream's initial state.
    pub mask_emb: Param<Tensor<3>>,
    /// The layers (`layer`).
    pub layers: Vec<XLNetLayer>,
    dropout: Dropout,
    #[module(skip)]
    d_model: usize,
    /// 0: no clamping.
    #[module(skip)]
    clamp_len: usize,
}

/// `Err` naming `name` unless `got == want`.
fn check_shape<const D: usize>(
    name: &str,
    got: [usize; D],
    want: [usize; D],
) -> Result<(), TextError> {
    if got == want {
        Ok(())
    } else {
        Err(TextError::Input {
            name: name.into(),
            reason: format!("shape {got:?}, expected {want:?}"),
        })
    }
}

/// The checks every XLNet forward makes: a non-empty batch, segment ids and
/// attention of the ids' shape.
fn check_tokens(
    ids: &Tensor<2, Int>,
    token_types: Option<&Tensor<2, Int>>,
    attention: Option<&Tensor<2, Bool>>,
) -> Result<[usize; 2], TextError> {
    let [b, t] = ids.dims();
    if b == 0 || t == 0 {
        return Err(TextError::Input {
            name: "ids".into(),
            reason: format!("shape [{b}, {t}]: no tokens"),
        });
    }
    if let Some(types) = token_types {
        check_shape("token_types", types.dims(), [b, t])?;
    }
    if let Some(a) = attention {
        check_shape("attention", a.dims(), [b, t])?;
    }
    Ok([b, t])
}

impl XLNetModel {
    /// The relative-attention context of a batch: position encodings (with
    /// dropout), the segment matrix, and the masks — a key is hidden where
    /// it is padding or `perm_mask` says so; in the content stream a token
    /// always sees itself.
    fn context(
        &self,
        [b, t]: [usize; 2],
        token_types: Option<Tensor<2, Int>>,
        attention: Option<Tensor<2, Bool>>,
        perm_mask: Option<Tensor<3, Bool>>,
        device: &Device,
    ) -> RelativeContext {
        let clamp = (self.clamp_len > 0).then_some(self.clamp_len);
        let positions = self.dropout.forward(sinusoid_relative_positions(
            t,
            t,
            self.d_model,
            clamp,
            device,
        ));
        let padding = attention.map(|a| a.bool_not().unsqueeze_dim::<3>(1).expand([b, t, t]));
        let hidden = match (padding, perm_mask) {
            (Some(p), Some(q)) => Some(p.bool_or(q)),
            (p, q) => p.or(q),
        };
        let content_mask = hidden.clone().map(|m| {
            let others = Tensor::<2, Bool>::diag_mask([t, t], 0, device);
            m.bool_and(others.unsqueeze_dim::<3>(0).expand([b, t, t]))
        });
        RelativeContext {
            positions,
            segments: token_types.map(|s| segment_matrix(s.clone(), s)),
            content_mask,
            query_mask: hidden,
        }
    }

    /// The content stream, unchecked.
    fn encode(
        &self,
        shape: [usize; 2],
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        attention: Option<Tensor<2, Bool>>,
    ) -> Tensor<3> {
        let device = ids.device();
        let ctx = self.context(shape, token_types, attention, None, &device);
        let mut h = self.dropout.forward(self.word_embedding.forward(ids));
        for layer in &self.layers {
            h = layer.forward(h, &ctx);
        }
        self.dropout.forward(h)
    }

    /// Encodes token ids (the content stream: fine-tuning and inference).
    /// `token_types` are the segment ids (any integers: only whether two
    /// tokens' ids are equal matters; `None`: one segment); `attention` is
    /// `true` on real tokens (`transformers`' `attention_mask`; `None`:
    /// every token is real). Padding may sit on either side: positions are
    /// relative, so real tokens' states do not depend on it.
    ///
    /// # Shapes
    /// - `ids`, `token_types`, `attention`: `[batch, tokens]`
    /// - output: `[batch, tokens, d_model]`
    ///
    /// # Errors
    /// [`TextError::Input`] for an empty batch or inputs of other shapes.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        attention: Option<Tensor<2, Bool>>,
    ) -> Result<Tensor<3>, TextError> {
        let shape = check_tokens(&ids, token_types.as_ref(), attention.as_ref())?;
        Ok(self.encode(shape, ids, token_types, attention))
    }

    /// Two-stream attention (XLNet's permutation language modelling, or
    /// `transformers`' `perm_mask` + `target_mapping`): the query stream
    /// starts from `mask_emb` at each prediction and attends to the content
    /// stream under `perm_mask` (`true` where token `i` may not see token
    /// `j`, e.g. `j` does not precede `i` in the factorisation order) and
    /// the padding. The content stream sees the same keys and, always,
    /// itself. `target_mapping[b, m, j]` is 1 when prediction `m` is at
    /// position `j` (one-hot rows).
    ///
    /// # Shapes
    /// - `ids`, `token_types`, `attention`: `[batch, tokens]`
    /// - `perm_mask`: `[batch, tokens, tokens]`
    /// - `target_mapping`: `[batch, predictions, tokens]`
    /// - output: content `[batch, tokens, d_model]`, query `[batch, predictions, d_model]`
    ///
    /// # Errors
    /// [`TextError::Input`] for an empty batch, no predictions or inputs of
    /// other shapes.
    pub fn forward_two_stream(
        &self,
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        attention: Option<Tensor<2, Bool>>,
        perm_mask: Option<Tensor<3, Bool>>,
        target_mapping: Tensor<3>,
    ) -> Result<XLNetTwoStreamOutput, TextError> {
        let [b, t] = check_tokens(&ids, token_types.as_ref(), attention.as_ref())?;
        if let Some(p) = &perm_mask {
            check_shape("perm_mask", p.dims(), [b, t, t])?;
        }
        let p = target_mapping.dims()[1];
        if p == 0 {
            return Err(TextError::Input {
                name: "target_mapping".into(),
                reason: "no predictions".into(),
            });
        }
        check_shape("target_mapping", target_mapping.dims(), [b, p, t])?;
        let device = ids.device();
        let ctx = self.context([b, t], token_types, attention, perm_mask, &device);
        let mut h = self.dropout.forward(self.word_embedding.forward(ids));
        let mut g = self
            .dropout
            .forward(self.mask_emb.val().expand([b, p, self.d_model]));
        for layer in &self.layers {
            (h, g) = layer.forward_two_stream(h, g, Some(target_mapping.clone()), &ctx);
        }
        Ok(XLNetTwoStreamOutput {
            content: self.dropout.forward(h),
            query: self.dropout.forward(g),
        })
    }
}

/// The hidden state of each row's last real token (the last `true` of
/// `attention`; the last token without `attention` or in a row without a
/// real token). `transformers`' XLNet summarises the last position, which
/// is the last real token when padding is on the left (XLNet's tokenizer
/// pads there); this also serves right-padded batches (the task layer's).
///
/// # Shapes
/// - `hidden`: `[batch, tokens, width]`, `attention`: `[batch, tokens]` → `[batch, width]`
pub fn last_real_token(hidden: Tensor<3>, attention: Option<Tensor<2, Bool>>) -> Tensor<2> {
    let [b, t, d] = hidden.dims();
    let device = hidden.device();
    let index = match attention {
        None => Tensor::<2, Int>::full([b, 1], t as i64 - 1, &device),
        Some(a) => {
            // 1 + the last real position, 0 for none
            let positions = Tensor::<1, Int>::arange(1..t as i64 + 1, &device)
                .unsqueeze::<2>()
                .expand([b, t]);
            let last = (a.int() * positions).max_dim(1);
            let none = last.clone().equal_elem(0);
            last.sub_scalar(1).mask_fill(none, t as i64 - 1)
        }
    };
    hidden
        .gather(1, index.reshape([b, 1, 1]).expand([b, 1, d]))
        .reshape([b, d])
}

/// XLNet with a sequence classifier (`transformers`'
/// `XLNetForSequenceClassification` with `summary_type = "last"`): the
/// last real token's state → `summary` → tanh → dropout → `logits_proj`.
///
/// `transformers` takes the last position, whatever it holds: XLNet's
/// tokenizer pads on the left and ends every text with `<cls>`, so that is
/// the last real token. Here the last real token is found from the
/// attention mask, which gives the same logits for unpadded and
/// left-padded batches and the right thing for right-padded ones (with
/// right padding the last position would be padding).
#[derive(Module, Debug)]
pub struct XLNetForSequenceClassification {
    /// The encoder (`transformer`).
    pub transformer: XLNetModel,
    /// `sequence_summary.summary`, `d_model → d_model`.
    pub summary: Linear,
    summary_dropout: Dropout,
    /// `logits_proj`, `d_model → labels`.
    pub logits_proj: Linear,
}

impl XLNetForSequenceClassification {
    /// Class logits; `token_types` and `attention` as for [`XLNetModel::forward`].
    ///
    /// # Shapes
    /// - `ids`, `token_types`, `attention`: `[batch, tokens]` → `[batch, labels]`
    ///
    /// # Errors
    /// [`TextError::Input`] for an empty batch or inputs of other shapes.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        attention: Option<Tensor<2, Bool>>,
    ) -> Result<Tensor<2>, TextError> {
        let shape = check_tokens(&ids, token_types.as_ref(), attention.as_ref())?;
        Ok(self.logits(shape, ids, token_types, attention))
    }

    /// The logits of checked inputs.
    pub(crate) fn logits(
        &self,
        shape: [usize; 2],
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        attention: Option<Tensor<2, Bool>>,
    ) -> Tensor<2> {
        let hidden = self
            .transformer
            .encode(shape, ids, token_types, attention.clone());
        let summary = tanh(self.summary.forward(last_real_token(hidden, attention)));
        self.logits_proj
            .forward(self.summary_dropout.forward(summary))
    }
}
