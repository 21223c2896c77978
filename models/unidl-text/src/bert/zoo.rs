//! BERT in `unidl` runs: `[model] name = "bert"` classifies texts with a
//! classifier on the pooled output, from scratch or from pretrained
//! `transformers` weights (`[pretrained] path = "data:minilm/model.safetensors"`,
//! `strict = false`: the classifier is new).

use std::path::Path;

use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_run::{BoxError, DataFacts, ZooModel};
use unidl_train::{
    MaskedLanguageModel, MaskedLanguageModelling, SentenceEncoder, SequenceClassifier,
    TextClassification, TextSimilarity,
};

use super::{
    BertConfig, BertForMaskedLm, BertForSequenceClassification, BertModel, load_hf_weights,
};
use crate::TextError;

/// `[model] name = "bert"`: the architecture (`[model.architecture]`,
/// `transformers`' `BertConfig` keys; default bert-base) and the classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertClassifierConfig {
    /// The encoder; its `vocab_size` must be the run tokenizer's.
    #[serde(default)]
    pub architecture: BertConfig,
    /// Classes (default: the data set's).
    #[serde(default)]
    pub num_classes: Option<usize>,
}

impl SequenceClassifier for BertForSequenceClassification {
    fn classify_tokens(&self, ids: Tensor<2, Int>, mask: Tensor<2, Bool>) -> Tensor<2> {
        self.forward(ids, Some(mask))
    }
}

/// `[model] name = "sentence_bert"`: BERT as a sentence encoder for
/// `text_similarity` — the mean of the last layer's real-token
/// representations, as sentence-transformers' all-MiniLM-L6-v2 pools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentenceBertConfig {
    /// The encoder; its `vocab_size` must be the run tokenizer's.
    #[serde(default)]
    pub architecture: BertConfig,
}

impl SentenceEncoder for BertModel {
    fn embed_tokens(&self, ids: Tensor<2, Int>, mask: Tensor<2, Bool>) -> Tensor<2> {
        self.mean_pooled(ids, mask)
    }
}

/// The run tokenizer's vocabulary must be the model's.
fn check_vocab(arch: &BertConfig, facts: &DataFacts) -> Result<(), TextError> {
    crate::hf::check_vocab(facts, arch.vocab_size, "model.architecture.vocab_size")
}

/// `[model] name = "bert_mlm"`: BERT with its masked-language-model head
/// for `masked_language_modelling` (masked-token generation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertMlmConfig {
    /// The encoder; its `vocab_size` must be the run tokenizer's.
    #[serde(default)]
    pub architecture: BertConfig,
}

impl MaskedLanguageModel for BertForMaskedLm {
    fn mlm_logits(&self, ids: Tensor<2, Int>, mask: Tensor<2, Bool>) -> Tensor<3> {
        self.forward(ids, Some(mask))
    }
}

/// The `ZooModel` impl every BERT run model shares: the run tokenizer's
/// vocabulary checked, texts longer than the learnt positions refused
/// (naming the sample), `transformers` weights loaded (`BertForMaskedLM`'s
/// or `BertForSequenceClassification`'s, or an encoder's alone with
/// `strict = false`: a new head then starts fresh).
macro_rules! bert_zoo_model {
    ($config:ty, $model:ty, $task:ident, |$cfg:ident, $facts:ident, $device:ident| $init:expr) => {
        impl ZooModel for $config {
            type Model = $model;
            type Task = $task;

            fn init(&self, facts: &DataFacts, device: &Device) -> Result<Self::Model, BoxError> {
                check_vocab(&self.architecture, facts)?;
                let ($cfg, $facts, $device) = (self, facts, device);
                $init
            }

            fn adapt_task(&self, task: $task) -> $task {
                $task {
                    max_length: Some(self.architecture.max_position_embeddings),
                    ..task
                }
            }

            fn load_weights(
                &self,
                model: Self::Model,
                path: &Path,
                strict: bool,
                _device: &Device,
            ) -> Result<(Self::Model, String), BoxError> {
                crate::hf::zoo_loaded(load_hf_weights(model, path, strict), path, "BERT")
            }
        }
    };
}

bert_zoo_model!(
    BertClassifierConfig,
    BertForSequenceClassification,
    TextClassification,
    |cfg, facts, device| {
        let classes = cfg
            .num_classes
            .or((!facts.class_names.is_empty()).then_some(facts.class_names.len()))
            .ok_or_else(|| TextError::Config {
                key: "model.num_classes".into(),
                reason: "unknown: set it or use labelled data".into(),
            })?;
        Ok(cfg.architecture.init_classifier(classes, device)?)
    }
);
bert_zoo_model!(
    SentenceBertConfig,
    BertModel,
    TextSimilarity,
    |cfg, _facts, device| Ok(cfg.architecture.init_model(device)?)
);
bert_zoo_model!(
    BertMlmConfig,
    BertForMaskedLm,
    MaskedLanguageModelling,
    |cfg, _facts, device| Ok(cfg.architecture.init_masked_lm(device)?)
);
