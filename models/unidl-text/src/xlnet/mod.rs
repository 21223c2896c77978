//! XLNet — Yang et al., "XLNet: Generalized Autoregressive Pretraining for
//! Language Understanding", NeurIPS 2019, laid out as `transformers`'
//! `XLNetModel` and `XLNetForSequenceClassification`: word embeddings and
//! no absolute positions; post-norm layers of relative multi-head attention
//! (Transformer-XL's content and relative-position terms with the learnt
//! biases `u` and `v`, XLNet's segment term; the shared core is
//! [`unidl_nn::RelativeAttention`]) and a GELU feed-forward; the two-stream
//! attention of permutation language modelling (`perm_mask`,
//! `target_mapping`, the query stream starting from `mask_emb`); and the
//! classifier's sequence summary (the last real token → dense → tanh →
//! `logits_proj`).
//!
//! [`XLNetConfig`] uses `transformers`' key names, so a model's
//! `config.json` reads directly ([`XLNetConfig::from_hf_json`]), and
//! [`load_hf_xlnet_weights`] maps `transformers`' state-dict names (with or
//! without the `transformer.` prefix) onto these modules. No memory
//! (`mems`) is carried from one call to the next.

mod config;
mod model;
mod weights;

pub use config::{FfActivation, XLNetConfig};
pub use model::{
    XLNetFeedForward, XLNetForSequenceClassification, XLNetLayer, XLNetModel, XLNetTwoStreamOutput,
    last_real_token,
};
pub use weights::{XLNetClassifierConfig, hf_xlnet_rules, load_hf_xlnet_weights};
