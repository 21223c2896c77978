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

impl ZooModel for BertClassifierConfig {
    type Model = BertForSequenceClassification;
    type Task = TextClassification;

    fn init(&self, facts: &DataFacts, device: &Device) -> Result<Self::Model, BoxError> {
        let arch = &self.architecture;
        check_vocab(arch, facts)?;
        let classes = self
            .num_classes
            .or((!facts.class_names.is_empty()).then_some(facts.class_names.len()))
            .ok_or_else(|| TextError::Config {
                key: "model.num_classes".into(),
                reason: "unknown: set it or use labelled data".into(),
            })?;
        Ok(arch.init_classifier(classes, device)?)
    }

    /// Texts longer than the learnt positions are refused, naming the sample.
    fn adapt_task(&self, task: TextClassification) -> TextClassification {
        TextClassification {
            max_length: Some(self.architecture.max_position_embeddings),
            ..task
        }
    }

    /// `transformers` weights (`model.safetensors` or `pytorch_model.bin`,
    /// with or without the `bert.` prefix) through [`load_hf_weights`].
    fn load_weights(
        &self,
        model: Self::Model,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(Self::Model, String), BoxError> {
        load_hf(model, path, strict)
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
    match facts.vocab_size {
        Some(v) if v != arch.vocab_size => Err(TextError::Config {
            key: "model.architecture.vocab_size".into(),
            reason: format!(
                "{} does not match the run's tokenizer ({v} tokens): use the tokenizer the \
                 weights were trained with ([data.tokenizer] file)",
                arch.vocab_size
            ),
        }),
        _ => Ok(()),
    }
}

/// Loads `transformers` weights, refusing a file none of whose keys match.
fn load_hf<M: unidl_tensor::module::ModuleApi>(
    model: M,
    path: &Path,
    strict: bool,
) -> Result<(M, String), BoxError> {
    crate::hf::zoo_loaded(load_hf_weights(model, path, strict), path, "BERT")
}

impl ZooModel for SentenceBertConfig {
    type Model = BertModel;
    type Task = TextSimilarity;

    fn init(&self, facts: &DataFacts, device: &Device) -> Result<Self::Model, BoxError> {
        check_vocab(&self.architecture, facts)?;
        Ok(self.architecture.init_model(device)?)
    }

    /// Texts longer than the learnt positions are refused, naming the sample.
    fn adapt_task(&self, task: TextSimilarity) -> TextSimilarity {
        TextSimilarity {
            max_length: Some(self.architecture.max_position_embeddings),
            ..task
        }
    }

    /// `transformers` weights through [`load_hf_weights`].
    fn load_weights(
        &self,
        model: Self::Model,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(Self::Model, String), BoxError> {
        load_hf(model, path, strict)
    }
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

impl ZooModel for BertMlmConfig {
    type Model = BertForMaskedLm;
    type Task = MaskedLanguageModelling;

    fn init(&self, facts: &DataFacts, device: &Device) -> Result<Self::Model, BoxError> {
        check_vocab(&self.architecture, facts)?;
        Ok(self.architecture.init_masked_lm(device)?)
    }

    /// Texts longer than the learnt positions are refused, naming the sample.
    fn adapt_task(&self, task: MaskedLanguageModelling) -> MaskedLanguageModelling {
        MaskedLanguageModelling {
            max_length: Some(self.architecture.max_position_embeddings),
            ..task
        }
    }

    /// `transformers` weights (`BertForMaskedLM`'s, or an encoder's alone
    /// with `strict = false`: the head then starts fresh).
    fn load_weights(
        &self,
        model: Self::Model,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(Self::Model, String), BoxError> {
        load_hf(model, path, strict)
    }
}
