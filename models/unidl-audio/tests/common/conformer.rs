//! Conformer parity against a `gen_conformer*.py` reference folder, shared
//! by `audio.rs` (torchaudio's blocks) and `conformer_rel.rs` (relative
//! positional encoding): the blocks in eval mode, and one train-mode step
//! of the CTC model with every gradient.

use burn::module::Module;
use burn::tensor::Float;
use unidl_audio::weights::{load_torchaudio_conformer, torchaudio_conformer_rules};
use unidl_audio::{Conformer, ConformerConfig};
use unidl_backend::Device;
use unidl_interop::{Framework, MappingRules};
use unidl_tensor::Tensor;
use unidl_tensor::module::{Forward, backward};
use unidl_testkit::{check_close, floats, values};

use super::{GradTolerance, Reference, float_tensor, lengths, targets};

/// The CTC model's rules: unidl's parts under the generator's names.
pub fn ctc_rules() -> MappingRules {
    MappingRules::new()
        .rename(r"^frontend\.", "subsampling.")
        .and_then(|r| r.rename(r"^blocks\.", ""))
        .and_then(|r| r.rename(r"^head\.", "ctc_head."))
        .unwrap()
        .then(torchaudio_conformer_rules(false).unwrap())
}

/// The model and a CTC loss over fixed targets, for `backward`.
#[derive(Module, Debug)]
pub struct CtcLoss {
    m: Conformer,
    #[module(skip)]
    lengths: Vec<usize>,
    #[module(skip)]
    targets: Vec<Vec<u32>>,
}

impl Forward for CtcLoss {
    fn forward_dyn(&self, input: &Tensor) -> unidl_tensor::Result<Tensor> {
        let (lp, n) = self
            .m
            .ctc(input.clone().into_burn::<3, Float>()?, &self.lengths)
            .expect("a CTC head");
        Tensor::from_burn(unidl_train::ctc_loss(lp, &self.targets, &n, 0).unwrap())
    }
}

/// CTC model `name` of `reference` (its config, its state dict by
/// [`ctc_rules`], strictly: every parameter found) on `dev`.
pub fn load_ctc(reference: Reference, name: &str, dev: &Device) -> Conformer {
    let ckpt = unidl_interop::read_safetensors(
        &reference.path(&format!("{name}.safetensors")),
        Framework::PyTorch,
    )
    .unwrap();
    let config: ConformerConfig = reference.config(name);
    let (m, report) =
        unidl_interop::load_into(config.init(dev).unwrap(), &ckpt, &ctc_rules(), true).unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    m
}

/// Blocks `name` (a torchaudio `Conformer` state dict) in eval mode on the
/// reference's padded batch: output lengths and output.
pub fn blocks_match(reference: Reference, name: &str) {
    let dev = Device::flex();
    let config: ConformerConfig = reference.config(name);
    let m = reference.load(name, config.init(&dev).unwrap(), load_torchaudio_conformer);
    let io = reference.io(name, &dev);
    let (y, n) = m
        .try_forward(float_tensor(&io, "input", &dev), &lengths(&io, "lengths"))
        .unwrap();
    assert_eq!(n, lengths(&io, "output_lengths"));
    check_close(name, &values(y), &floats(&io, "output"), 1e-4);
}

/// One train-mode step of CTC model `name` (loaded by [`ctc_rules`]):
/// log-probs, output lengths, `ctc_loss` and every gradient, labelled
/// `what`. Returns the names of the reference's gradients.
pub fn ctc_train_step_matches(reference: Reference, name: &str, what: &str) -> Vec<String> {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let m = load_ctc(reference, name, &dev);
    let io = reference.io(name, &dev);
    let lens = lengths(&io, "lengths");
    let targets = targets(&io);

    // train mode: batch statistics in the convolution modules
    let (lp, n) = m
        .clone()
        .fork(&ad)
        .ctc(float_tensor(&io, "input", &ad), &lens)
        .unwrap();
    assert_eq!(n, lengths(&io, "output_lengths"));
    check_close(
        &format!("{what} log-probs"),
        &values(lp.clone()),
        &floats(&io, "log_probs"),
        1e-4,
    );
    let loss = unidl_train::ctc_loss(lp, &targets, &n, 0).unwrap();
    unidl_testkit::check_loss(&format!("{what} loss"), &loss, floats(&io, "loss")[0]);

    let wrap = CtcLoss {
        m,
        lengths: lens,
        targets,
    };
    let x = io["input"].clone();
    let one = Tensor::from_f32(vec![1.0], &[1], &dev).unwrap();
    let grads = backward(&wrap, &x, &one).unwrap();
    // in_proj_{weight,bias} split in three: every unidl parameter has one;
    // a gradient that is zero in exact arithmetic (the depthwise bias before
    // train-mode batch norm) is compared at 1 % of the largest one's norm
    super::check_reference_grads(
        &format!("{what} model"),
        &reference.io_file(name),
        &ctc_rules(),
        &wrap.m,
        &grads,
        "m.",
        GradTolerance::l2(1e-2, 1e-4),
    )
}
