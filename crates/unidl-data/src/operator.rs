//! Data operators (B.7): the transform pipeline under the standard's names.

use crate::error::Result;
use crate::sample::{Input, Sample, Targets};
use crate::transform::{Compose, Registry, Transform, pipeline_from_toml, rng_for};

/// `indata` / `outdata` of `operate`: inputs and targets (B.7.2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpData {
    /// Inputs by name.
    pub inputs: std::collections::BTreeMap<String, Input>,
    /// Targets.
    pub targets: Targets,
}

/// A configured operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pipeline: Compose,
    seed: u64,
    calls: u64,
}

/// `construct_operator(op_config?)` (B.7.1): `op_config` is a TOML document of
/// `[[transforms]]` entries (`None` = identity); errors name the line and key.
pub fn construct_operator(op_config: Option<&str>, seed: u64) -> Result<Operator> {
    construct_operator_with(op_config, seed, &Registry::new())
}

/// [`construct_operator`] with user-registered transforms.
pub fn construct_operator_with(
    op_config: Option<&str>,
    seed: u64,
    registry: &Registry,
) -> Result<Operator> {
    let pipeline = match op_config {
        Some(text) => pipeline_from_toml(text, registry)?,
        None => Compose(Vec::new()),
    };
    Ok(Operator {
        pipeline,
        seed,
        calls: 0,
    })
}

impl Operator {
    /// `operate(indata) -> outdata` (B.7.2). Call `n` draws from stream (seed, n).
    pub fn operate(&mut self, indata: OpData) -> Result<OpData> {
        let mut rng = rng_for(self.seed, u64::MAX - 1, self.calls);
        self.calls += 1;
        let s = Sample {
            inputs: indata.inputs,
            targets: indata.targets,
            source: "operate".into(),
            frame: None,
        };
        let out = self.pipeline.apply(s, &mut rng)?;
        Ok(OpData {
            inputs: out.inputs,
            targets: out.targets,
        })
    }
}
