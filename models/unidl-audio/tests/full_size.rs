//! unidl-audio's models at the sizes the zoo documents, against the
//! full-size references `.ci/run` generates into its cache
//! (`tests/reference/gen_audio_full.py --full DIR`, read through
//! `UNIDL_AUDIO_FULL_REF`): Conformer-S as a CTC model with absolute and
//! with relative positional attention, torchaudio's `conformer_rnnt_base`
//! and wavenet_vocoder's mel vocoder — parameter counts and eval-mode
//! outputs on padded batches. Skipped when the cache is absent, a failure
//! under `UNIDL_REQUIRE_ZOO_REF=1` (as in CI).

mod common;

use common::{Reference, float_tensor, lengths, params, targets};
use unidl_audio::weights::{load_torchaudio_rnnt, load_wavenet_vocoder};
use unidl_audio::{RnntConfig, WaveNetConfig};
use unidl_backend::Device;
use unidl_testkit::{check_close, floats, values};

fn full() -> Option<Reference> {
    Reference::cached(
        "UNIDL_AUDIO_FULL_REF",
        "full",
        "`models/unidl-audio/tests/reference/gen_audio_full.py --full DIR` (.ci/run does)",
    )
}

fn reference_params(r: Reference, name: &str) -> usize {
    r.meta()["models"][name]["params"].as_u64().unwrap() as usize
}

#[test]
fn conformer_s_ctc_models_match_the_reference() {
    let Some(r) = full() else { return };
    let dev = Device::flex();
    for name in ["conformer_s", "conformer_s_rel"] {
        let m = common::conformer::load_ctc(r, name, &dev);
        assert_eq!(params(&m), reference_params(r, name), "{name}");
        let io = r.io(name, &dev);
        let (lp, n) = m
            .ctc(float_tensor(&io, "input", &dev), &lengths(&io, "lengths"))
            .unwrap();
        assert_eq!(n, lengths(&io, "output_lengths"), "{name}");
        check_close(name, &values(lp), &floats(&io, "log_probs"), 1e-4);
    }
}

#[test]
fn conformer_rnnt_base_matches_torchaudio() {
    let Some(r) = full() else { return };
    let dev = Device::flex();
    let config: RnntConfig = r.config("rnnt_base");
    assert_eq!(config, RnntConfig::base(80, 29));
    let m = r.load(
        "rnnt_base",
        config.init(&dev).unwrap(),
        load_torchaudio_rnnt,
    );
    assert_eq!(params(&m), 28_959_773);
    assert_eq!(params(&m), reference_params(r, "rnnt_base"));
    let io = r.io("rnnt_base", &dev);
    let (logits, n) = m
        .try_forward(
            float_tensor(&io, "input", &dev),
            &lengths(&io, "lengths"),
            &targets(&io),
        )
        .unwrap();
    assert_eq!(n, lengths(&io, "output_lengths"));
    check_close(
        "rnnt_base logits",
        &values(logits),
        &floats(&io, "logits"),
        1e-4,
    );
}

#[test]
fn mel_vocoder_matches_wavenet_vocoder() {
    let Some(r) = full() else { return };
    let dev = Device::flex();
    let config: WaveNetConfig = r.config("mel_vocoder");
    assert_eq!(
        WaveNetConfig {
            dropout: config.dropout,
            ..WaveNetConfig::mel_vocoder()
        },
        config
    );
    let m = r.load(
        "mel_vocoder",
        config.init(&dev).unwrap(),
        load_wavenet_vocoder,
    );
    assert_eq!(params(&m), 24_882_228);
    let io = r.io("mel_vocoder", &dev);
    let (classes, c, g) = common::wavenet_inputs(&io, &dev);
    let y = m.try_forward(classes, Some(c), g).unwrap();
    check_close(
        "mel_vocoder logits",
        &values(y),
        &floats(&io, "output"),
        1e-4,
    );
}
