//! The fuzz targets: every reader of a file or config unidl accepts from a
//! user, fed through its public entry point.
//!
//! | target | reader |
//! |---|---|
//! | `pytorch-zip`, `pytorch-legacy` | `unidl_interop::read_pytorch` (torch.save zip; legacy pickle stream) |
//! | `safetensors` | `unidl_interop::read_safetensors` |
//! | `state-dict` | `unidl_tensor::module::load_state_dict_file` (unidl's own checkpoints) |
//! | `keras-archive`, `keras-weights-h5`, `keras-legacy-h5` | `unidl_interop::keras::read_keras` |
//! | `tf-checkpoint` | `unidl_interop::tf::read_tf_checkpoint` (the `.index`, checksums repaired) |
//! | `paddle` | `unidl_interop::read_pdparams` |
//! | `mindspore` | `unidl_interop::read_mindspore` |
//! | `onnx` | `unidl_interop::onnx::read_onnx_initializers` |
//! | `mapping-rules` | `unidl_interop::MappingRules::from_toml` |
//! | `image-jpeg`, `image-png`, `image-bmp` | `unidl_data::parse::decode_image` |
//! | `wav`, `mp3` | `unidl_media::probe` and `load_audio` (mono; some cases whole, some resampled to 16 kHz) |
//! | `ffmpeg-audio`, `ffmpeg-video` (feature `ffmpeg`) | `unidl_media::load_audio`, `load_video` |
//! | `coco` | `unidl_data::dataset::CocoDataset` (open, then every sample with its masks) |
//! | `voc` | `unidl_data::dataset::VocDataset` (one annotation, then its sample) |
//! | `text-manifest`, `parallel-text` | `TextClassification::open_manifest`, `ParallelText::open` |
//! | `image-manifest`, `audio-manifest` | `LabeledImages::open_manifest`, `AudioManifest::open` (then their first samples) |
//! | `tokenizer` | `unidl_data::text::TextTokenizer::load`, then encode and decode |
//! | `pipeline` | `unidl_data::transform::pipeline_from_toml` |
//! | `gettext-mo` | `unidl_data::prepare::parse_mo` |
//! | `run-config` | `unidl_run::RunConfig::load` |
//! | `optimizer-config` | `unidl_train::OptimizerConfig::from_toml` + `validate` |
//! | `trainer-config` | `unidl_train::trainer::TrainerConfig` from TOML + `validate` |

use std::path::Path;

use unidl_data::Dataset;
use unidl_interop::Framework;

use crate::error::FuzzError;
use crate::target::{Ctx, Outcome, Target, no_setup};

const PICKLE_TOKENS: &[&[u8]] = &[
    b"\x80\x02",
    b"}q\x00(",
    b"](",
    b"ctorch._utils\n_rebuild_tensor_v2\n",
    b"cnumpy.core.multiarray\n_reconstruct\n",
    b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"J\xff\xff\xff\x7f",
    b"h\x00",
    b"q\x01",
    b"2a",
    b"(",
    b"t",
    b"R",
    b"b",
    b".",
];

const JSON_TOKENS: &[&[u8]] = &[
    b"null",
    b"true",
    b"[[",
    b"]]",
    b"{\"",
    b"\":",
    b"\"counts\"",
    b"\"size\"",
];

const TOML_TOKENS: &[&[u8]] = &[
    b"[[",
    b"]]",
    b" = ",
    b"\"\"\"",
    b"'''",
    b"[a]",
    b"[a.b]",
    b"{ x = 1 }",
    b"true",
    b"1979-05-27",
    b"0x7fffffffffffffff",
    b"-0",
    b"+inf",
    b"nan",
];

const XML_TOKENS: &[&[u8]] = &[
    b"<object>",
    b"</object>",
    b"<bndbox>",
    b"<![CDATA[",
    b"]]>",
    b"&amp;",
    b"&#0;",
    b"<!--",
    b"-->",
    b"<?xml?>",
    b"<!DOCTYPE a [<!ENTITY e \"x\">]>",
];

/// Every target of this build, in the order `all` runs them.
pub fn all() -> Vec<Target> {
    let mut t = vec![
        Target {
            name: "pytorch-zip",
            about: "torch.save zip archives (read_pytorch)",
            seeds: &["crates/unidl-interop/tests/fixtures/pytorch/ref.pt"],
            tokens: PICKLE_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |ctx, b| unidl_interop::read_pytorch(&ctx.write("case.pt", b)).into(),
        },
        Target {
            name: "pytorch-legacy",
            about: "legacy torch.save pickle streams (read_pytorch)",
            seeds: &[
                "crates/unidl-interop/tests/fixtures/pytorch/ref_legacy.pt",
                "crates/unidl-interop/tests/fixtures/pytorch/hostile.pt",
            ],
            tokens: PICKLE_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |ctx, b| unidl_interop::read_pytorch(&ctx.write("case.pt", b)).into(),
        },
        Target {
            name: "safetensors",
            about: "safetensors through the interop reader (read_safetensors)",
            seeds: &[
                "crates/unidl-interop/tests/fixtures/pytorch/ref.safetensors",
                "crates/unidl-interop/tests/fixtures/writer/from_mindspore.safetensors",
            ],
            tokens: JSON_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |ctx, b| {
                unidl_interop::read_safetensors(
                    &ctx.write("case.safetensors", b),
                    Framework::PyTorch,
                )
                .into()
            },
        },
        Target {
            name: "state-dict",
            about: "unidl's own safetensors checkpoints (load_state_dict_file)",
            seeds: &[
                "crates/unidl-interop/tests/fixtures/pytorch/ref.safetensors",
                "crates/unidl-interop/tests/fixtures/writer/from_mindspore.safetensors",
            ],
            tokens: JSON_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |ctx, b| {
                let p = ctx.write("case.safetensors", b);
                unidl_tensor::module::load_state_dict_file(&p, ctx.device()).into()
            },
        },
        Target {
            name: "keras-archive",
            about: ".keras zip archives (read_keras)",
            seeds: &["crates/unidl-interop/tests/fixtures/keras/ref.keras"],
            tokens: JSON_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |ctx, b| unidl_interop::keras::read_keras(ctx.write("case.keras", b)).into(),
        },
        Target {
            name: "keras-weights-h5",
            about: "Keras 3 .weights.h5 (read_keras)",
            seeds: &[
                "crates/unidl-interop/tests/fixtures/keras/ref.weights.h5",
                "crates/unidl-interop/tests/fixtures/keras/string_kernel.weights.h5",
                "crates/unidl-interop/tests/fixtures/keras/cyclic.weights.h5",
            ],
            tokens: &[b"HEAP", b"TREE", b"SNOD", b"OHDR", b"\x89HDF\r\n\x1a\n"],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| unidl_interop::keras::read_keras(ctx.write("case.weights.h5", b)).into(),
        },
        Target {
            name: "keras-legacy-h5",
            about: "legacy Keras .h5 (read_keras)",
            seeds: &["crates/unidl-interop/tests/fixtures/keras/ref_legacy.h5"],
            tokens: &[b"HEAP", b"TREE", b"SNOD", b"OHDR", b"\x89HDF\r\n\x1a\n"],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| unidl_interop::keras::read_keras(ctx.write("case.h5", b)).into(),
        },
        Target {
            name: "tf-checkpoint",
            about: "TensorFlow tensor-bundle index (read_tf_checkpoint; data shard fixed)",
            seeds: &[
                "crates/unidl-interop/tests/fixtures/tf/ckpt/ref.index",
                "crates/unidl-interop/tests/fixtures/tf/complex/ckpt.index",
            ],
            tokens: &[
                b"_CHECKPOINTABLE_OBJECT_GRAPH",
                b"/.ATTRIBUTES/VARIABLE_VALUE",
            ],
            setup: |ctx| {
                ctx.copy(
                    "crates/unidl-interop/tests/fixtures/tf/ckpt/ref.data-00000-of-00001",
                    "case.data-00000-of-00001",
                )
            },
            fixup: Some(crate::sstable::fix_checksums),
            run: |ctx, b| unidl_interop::tf::read_tf_checkpoint(ctx.write("case.index", b)).into(),
        },
        Target {
            name: "paddle",
            about: "PaddlePaddle .pdparams pickles (read_pdparams)",
            seeds: &["crates/unidl-interop/tests/fixtures/paddle/ref.pdparams"],
            tokens: PICKLE_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |ctx, b| unidl_interop::read_pdparams(&ctx.write("case.pdparams", b)).into(),
        },
        Target {
            name: "mindspore",
            about: "MindSpore .ckpt protobufs (read_mindspore)",
            seeds: &["crates/unidl-interop/tests/fixtures/mindspore/ref.ckpt"],
            tokens: &[b"Float32", b"Int64", b"\x0a\xff\xff\xff\xff\x0f"],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| unidl_interop::read_mindspore(&ctx.write("case.ckpt", b)).into(),
        },
        Target {
            name: "onnx",
            about: "ONNX initializers (read_onnx_initializers)",
            seeds: &[
                "crates/unidl-interop/tests/fixtures/onnx/unidl_cnn.onnx",
                "crates/unidl-interop/tests/fixtures/onnx/unidl_rnn.onnx",
                "crates/unidl-interop/tests/fixtures/onnx/short_raw.onnx",
                "crates/unidl-interop/tests/fixtures/onnx/string_init.onnx",
                "crates/unidl-interop/tests/fixtures/onnx/typed_fields.onnx",
                "crates/unidl-interop/tests/fixtures/onnx/external_data.onnx",
            ],
            tokens: &[b"\x08\x01", b"\x08\x07", b"\xff\xff\xff\xff\x0f"],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| {
                unidl_interop::onnx::read_onnx_initializers(ctx.write("case.onnx", b)).into()
            },
        },
        Target {
            name: "mapping-rules",
            about: "key-mapping rules in TOML (MappingRules::from_toml)",
            seeds: &[],
            tokens: TOML_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |_, b| unidl_interop::MappingRules::from_toml(&String::from_utf8_lossy(b)).into(),
        },
        Target {
            name: "image-jpeg",
            about: "JPEG images (decode_image)",
            seeds: &[
                "crates/unidl-data/tests/fixtures/voc/JPEGImages/000001.jpg",
                "crates/unidl-data/tests/fixtures/voc/JPEGImages/000002.jpg",
            ],
            tokens: &[
                b"\xff\xd8",
                b"\xff\xc0",
                b"\xff\xc2",
                b"\xff\xc4",
                b"\xff\xda",
                b"\xff\xd9",
                b"\xff\xdd",
            ],
            setup: no_setup,
            fixup: None,
            run: decode_image,
        },
        Target {
            name: "image-png",
            about: "PNG images (decode_image)",
            seeds: &[
                "crates/unidl-data/tests/fixtures/coco/images/a.png",
                "crates/unidl-data/tests/fixtures/coco/images/empty.png",
                "tests/fixtures/mnist/test/7/00004.png",
            ],
            tokens: &[
                b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS", b"acTL", b"fcTL", b"fdAT",
            ],
            setup: no_setup,
            fixup: None,
            run: decode_image,
        },
        Target {
            name: "image-bmp",
            about: "BMP images (decode_image)",
            seeds: &[],
            tokens: &[b"BM", b"\x28\x00\x00\x00", b"\x7c\x00\x00\x00"],
            setup: no_setup,
            fixup: None,
            run: decode_image,
        },
        Target {
            name: "wav",
            about: "WAV audio (probe, load_audio mono, resampled to 16 kHz)",
            seeds: &[
                "crates/unidl-data/tests/fixtures/audio/clips/mono_8k.wav",
                "crates/unidl-data/tests/fixtures/audio/clips/stereo_8k.wav",
                "tests/fixtures/media/sine_440_mulaw.wav",
            ],
            tokens: &[
                b"RIFF",
                b"WAVE",
                b"fmt ",
                b"data",
                b"LIST",
                b"fact",
                b"\xfe\xff",
            ],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| audio(&ctx.write("case.wav", b), b.len()),
        },
        Target {
            name: "mp3",
            about: "MP3 audio (probe, load_audio mono, resampled to 16 kHz)",
            seeds: &[
                "tests/fixtures/media/speech_hello.mp3",
                "tests/fixtures/media/truncated.mp3",
                "tests/fixtures/media/random.mp3",
            ],
            tokens: &[
                b"ID3\x04\x00",
                b"\xff\xfb",
                b"\xff\xf3",
                b"Xing",
                b"Info",
                b"LAME",
            ],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| audio(&ctx.write("case.mp3", b), b.len()),
        },
        Target {
            name: "coco",
            about: "COCO annotation JSON with masks (CocoDataset)",
            seeds: &["crates/unidl-data/tests/fixtures/coco/annotations.json"],
            tokens: JSON_TOKENS,
            setup: |ctx| {
                for f in ["a.png", "b.png", "empty.png"] {
                    ctx.copy(
                        &format!("crates/unidl-data/tests/fixtures/coco/images/{f}"),
                        f,
                    )?;
                }
                Ok(())
            },
            fixup: None,
            run: |ctx, b| {
                let p = ctx.write("annotations.json", b);
                let r = unidl_data::dataset::CocoDataset::open(&p, None, None)
                    .and_then(|ds| (0..ds.len().min(8)).try_for_each(|i| ds.get(i).map(drop)));
                r.into()
            },
        },
        Target {
            name: "voc",
            about: "Pascal VOC annotation XML (VocDataset)",
            seeds: &[
                "crates/unidl-data/tests/fixtures/voc/Annotations/000001.xml",
                "crates/unidl-data/tests/fixtures/voc/Annotations/000002.xml",
            ],
            tokens: XML_TOKENS,
            setup: |ctx| {
                for f in ["000001.jpg", "000002.jpg"] {
                    ctx.copy(
                        &format!("crates/unidl-data/tests/fixtures/voc/JPEGImages/{f}"),
                        &format!("voc/JPEGImages/{f}"),
                    )?;
                }
                Ok(())
            },
            fixup: None,
            run: |ctx, b| {
                ctx.write("voc/Annotations/000001.xml", b);
                let root = ctx.dir().join("voc");
                unidl_data::dataset::VocDataset::open(&root, None, None, None)
                    .and_then(|ds| ds.get(0))
                    .into()
            },
        },
        Target {
            name: "text-manifest",
            about: "text-classification manifests, JSON lines or CSV (TextClassification)",
            seeds: &[
                "crates/unidl-data/tests/fixtures/text/messages.jsonl",
                "crates/unidl-data/tests/fixtures/text/messages.csv",
            ],
            tokens: JSON_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |ctx, b| {
                let name = if looks_like_json(b) {
                    "case.jsonl"
                } else {
                    "case.csv"
                };
                let p = ctx.write(name, b);
                unidl_data::dataset::TextClassification::open_manifest(&p)
                    .and_then(|ds| (0..ds.len().min(8)).try_for_each(|i| ds.get(i).map(drop)))
                    .into()
            },
        },
        Target {
            name: "image-manifest",
            about: "image classification manifests, CSV or JSON lines (LabeledImages)",
            seeds: &[],
            tokens: JSON_TOKENS,
            setup: |ctx| {
                for f in ["a.png", "b.png", "empty.png"] {
                    ctx.copy(
                        &format!("crates/unidl-data/tests/fixtures/coco/images/{f}"),
                        f,
                    )?;
                }
                Ok(())
            },
            fixup: None,
            run: |ctx, b| {
                let name = if looks_like_json(b) {
                    "case.jsonl"
                } else {
                    "case.csv"
                };
                let p = ctx.write(name, b);
                unidl_data::dataset::LabeledImages::open_manifest(&p, None)
                    .and_then(|ds| (0..ds.len().min(4)).try_for_each(|i| ds.get(i).map(drop)))
                    .into()
            },
        },
        Target {
            name: "audio-manifest",
            about: "speech manifests, CSV or JSON lines (AudioManifest)",
            seeds: &[
                "crates/unidl-data/tests/fixtures/audio/manifest.csv",
                "crates/unidl-data/tests/fixtures/audio/manifest.jsonl",
            ],
            tokens: JSON_TOKENS,
            setup: |ctx| {
                for f in ["mono_8k.wav", "stereo_8k.wav"] {
                    ctx.copy(
                        &format!("crates/unidl-data/tests/fixtures/audio/clips/{f}"),
                        &format!("clips/{f}"),
                    )?;
                }
                Ok(())
            },
            fixup: None,
            run: |ctx, b| {
                let name = if looks_like_json(b) {
                    "case.jsonl"
                } else {
                    "case.csv"
                };
                let p = ctx.write(name, b);
                unidl_data::dataset::AudioManifest::open(&p, Default::default())
                    .and_then(|ds| (0..ds.len().min(2)).try_for_each(|i| ds.get(i).map(drop)))
                    .into()
            },
        },
        Target {
            name: "parallel-text",
            about: "parallel text, TSV or JSON lines (ParallelText)",
            seeds: &[
                "crates/unidl-data/tests/fixtures/parallel/en_de.tsv",
                "crates/unidl-data/tests/fixtures/parallel/en_de.jsonl",
                "crates/unidl-data/tests/fixtures/parallel/bad.tsv",
            ],
            tokens: &[b"\t", b"source\ttarget\n", b"\"source\":", b"\"target\":"],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| {
                let name = if looks_like_json(b) {
                    "case.jsonl"
                } else {
                    "case.tsv"
                };
                let p = ctx.write(name, b);
                unidl_data::dataset::ParallelText::open(&p)
                    .and_then(|ds| (0..ds.len().min(8)).try_for_each(|i| ds.get(i).map(drop)))
                    .into()
            },
        },
        Target {
            name: "tokenizer",
            about: "tokenizer.json (TextTokenizer::load, encode, decode)",
            seeds: &[],
            tokens: &[
                b"\"WordPiece\"",
                b"\"BPE\"",
                b"\"Unigram\"",
                b"\"WordLevel\"",
                b"\"vocab\"",
                b"\"merges\"",
                b"\"Sequence\"",
                b"\"ByteLevel\"",
                b"\"Replace\"",
            ],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| {
                let p = ctx.write("tokenizer.json", b);
                unidl_data::text::TextTokenizer::load(&p)
                    .and_then(|t| {
                        let ids = t.encode("Hello, fuzzed world: 123 files read.")?;
                        t.decode(&ids)
                    })
                    .into()
            },
        },
        Target {
            name: "pipeline",
            about: "transform pipelines in TOML (pipeline_from_toml)",
            seeds: &[],
            tokens: TOML_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |_, b| {
                unidl_data::transform::pipeline_from_toml(
                    &String::from_utf8_lossy(b),
                    &unidl_data::transform::Registry::new(),
                )
                .into()
            },
        },
        Target {
            name: "gettext-mo",
            about: "GNU gettext .mo catalogues (parse_mo)",
            seeds: &[],
            tokens: &[
                b"\xde\x12\x04\x95",
                b"\x95\x04\x12\xde",
                b"charset=",
                b"\x04",
            ],
            setup: no_setup,
            fixup: None,
            run: |_, b| unidl_data::prepare::parse_mo(b, Path::new("case.mo")).into(),
        },
        Target {
            name: "run-config",
            about: "run configs (RunConfig::load)",
            seeds: &[
                "configs/quickstart.toml",
                "configs/quickstart_mixup.toml",
                "configs/textcnn_spam.toml",
                "configs/resnet18_mnist.toml",
            ],
            tokens: TOML_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |ctx, b| unidl_run::RunConfig::load(&ctx.write("config.toml", b)).into(),
        },
        Target {
            name: "optimizer-config",
            about: "optimizer tables (OptimizerConfig::from_toml, validate)",
            seeds: &[],
            tokens: TOML_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |_, b| {
                unidl_train::OptimizerConfig::from_toml(&String::from_utf8_lossy(b))
                    .and_then(|c| c.validate())
                    .into()
            },
        },
        Target {
            name: "trainer-config",
            about: "trainer tables (TrainerConfig from TOML, validate)",
            seeds: &[],
            tokens: TOML_TOKENS,
            setup: no_setup,
            fixup: None,
            run: |_, b| {
                toml::from_str::<unidl_train::trainer::TrainerConfig>(&String::from_utf8_lossy(b))
                    .map_err(|e| e.to_string())
                    .and_then(|c| c.validate().map_err(|e| e.to_string()))
                    .into()
            },
        },
    ];
    t.extend(ffmpeg_targets());
    t
}

#[cfg(feature = "ffmpeg")]
fn ffmpeg_targets() -> Vec<Target> {
    vec![
        Target {
            name: "ffmpeg-audio",
            about: "audio decoded by FFmpeg: AAC/M4A, FLAC, WMA (load_audio)",
            seeds: &[
                "tests/fixtures/media/sine_440.m4a",
                "tests/fixtures/media/sine_440.flac",
                "tests/fixtures/media/sine_440.wma",
            ],
            tokens: &[b"ftyp", b"moov", b"mdat", b"fLaC", b"\x30\x26\xb2\x75"],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| audio(&ctx.write("case.media", b), b.len()),
        },
        Target {
            name: "ffmpeg-video",
            about: "video decoded by FFmpeg: H.264, H.265, AV1 (probe, load_video_with)",
            seeds: &[
                "tests/fixtures/media/h264.mp4",
                "tests/fixtures/media/av1.mp4",
                "tests/fixtures/media/hevc.mkv",
            ],
            tokens: &[
                b"ftyp",
                b"moov",
                b"mdat",
                b"\x1a\x45\xdf\xa3",
                b"\x00\x00\x00\x01",
            ],
            setup: no_setup,
            fixup: None,
            run: |ctx, b| {
                // Half the cases (by length, so a replay does the same) pick
                // four frames across the whole clip; the others stop after
                // two frames, scaled by swscale.
                let p = ctx.write("case.media", b);
                let _ = unidl_media::probe(&p);
                let opts = if b.len().is_multiple_of(2) {
                    unidl_media::VideoOptions::from(unidl_media::FrameSelection::Uniform(4))
                } else {
                    unidl_media::VideoOptions::from(unidl_media::FrameSelection::All)
                        .max_frames(2)
                        .resize(24, 16)
                };
                unidl_media::load_video_with(&p, &opts).into()
            },
        },
    ]
}

#[cfg(not(feature = "ffmpeg"))]
fn ffmpeg_targets() -> Vec<Target> {
    Vec::new()
}

/// Targets that fail on purpose, to test the harness itself (not part of
/// `all`): by a hash of the case, 1% of cases panic, 0.3% abort the worker
/// and 0.1% hang. [`selftest_kind`] says which a case does.
pub fn selftest() -> Vec<Target> {
    vec![Target {
        name: "selftest",
        about: "fails on purpose: panics, aborts and hangs (tests the harness)",
        seeds: &["configs/quickstart.toml"],
        tokens: &[],
        setup: no_setup,
        fixup: None,
        run: |_, b| match selftest_kind(b) {
            Some(crate::driver::FindingKind::Panic) => panic!("selftest panic"),
            Some(crate::driver::FindingKind::Abort) => std::process::abort(),
            Some(crate::driver::FindingKind::Hang) => loop {
                std::thread::sleep(std::time::Duration::from_secs(60));
            },
            None => Outcome::Accepted,
        },
    }]
}

/// What the `selftest` target does with a case (`None`: accepts it).
pub fn selftest_kind(bytes: &[u8]) -> Option<crate::driver::FindingKind> {
    use crate::driver::FindingKind;
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    }) % 1000;
    match h {
        0..10 => Some(FindingKind::Panic),
        10..13 => Some(FindingKind::Abort),
        13 => Some(FindingKind::Hang),
        _ => None,
    }
}

/// Targets that need a cargo feature this build does not have, with it.
pub fn left_out() -> Vec<(&'static str, &'static str)> {
    if cfg!(feature = "ffmpeg") {
        Vec::new()
    } else {
        vec![("ffmpeg-audio", "ffmpeg"), ("ffmpeg-video", "ffmpeg")]
    }
}

/// Looks up targets by name (`all` for every one of [`all`]; the
/// [`selftest`] targets only by name).
pub fn select(names: &[String]) -> Result<Vec<Target>, FuzzError> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(all());
    }
    let mut every = all();
    every.extend(selftest());
    names
        .iter()
        .map(|n| {
            every
                .iter()
                .find(|t| t.name == n)
                .copied()
                .ok_or_else(|| FuzzError::UnknownTarget {
                    name: n.clone(),
                    known: crate::worker::names(&every),
                })
        })
        .collect()
}

fn decode_image(_: &Ctx, b: &[u8]) -> Outcome {
    unidl_data::parse::decode_image(b, None).into()
}

/// `probe`, then `load_audio` downmixed to mono. The case's length picks
/// the rest (so a replay does the same): one case in four is also resampled
/// to 16 kHz, one in four is read whole, the others only their first
/// quarter second — the FFT resampler and long decodes would otherwise
/// dominate every case.
fn audio(p: &Path, len: usize) -> Outcome {
    let _ = unidl_media::probe(p);
    let opts = unidl_media::AudioOptions {
        sample_rate: len.is_multiple_of(4).then_some(16_000),
        channels: Some(1),
        max_duration_secs: (len % 4 != 1).then_some(0.25),
    };
    unidl_media::load_audio(p, &opts).into()
}

fn looks_like_json(b: &[u8]) -> bool {
    b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{')
}
