//! TensorFlow checkpoints and SavedModel variables: the *tensor bundle* format.
//!
//! A bundle is `<prefix>.index` plus `<prefix>.data-NNNNN-of-MMMMM` shards.
//! The index is a LevelDB-style SSTable (data blocks with prefix-compressed
//! keys and restart points, an index block, a 48-byte footer) whose values are
//! `BundleEntryProto` protobufs (the empty key holds a `BundleHeaderProto`);
//! each entry names a shard, an offset, a size and a CRC32C of the raw
//! little-endian bytes. Blocks compressed with snappy are refused with
//! [`InteropError::Unsupported`]; TensorFlow writes bundles uncompressed.
//!
//! Keys: TF2 object-based checkpoints store variables under paths of the
//! object graph, e.g. `model/_operations/2/_kernel/.ATTRIBUTES/VARIABLE_VALUE`
//! (Keras 3) or `model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`
//! (tf.keras 2). When the bundle holds the object graph
//! (`_CHECKPOINTABLE_OBJECT_GRAPH`) and the graph gives every variable a
//! unique `full_name` (Keras sets it to the variable path, `conv/kernel`), the
//! checkpoint uses those names, the same keys as [`crate::keras`]; otherwise
//! keys are the bundle keys with `/.ATTRIBUTES/VARIABLE_VALUE` removed.
//! Optimizer slots (`…/.OPTIMIZER_SLOT/…`) and the graph itself are skipped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{InteropError, Result};
use crate::host::{Checkpoint, Framework, HostTensor};
use crate::pickle::ElemType;

/// Key of the serialized `TrackableObjectGraph` in TF2 checkpoints.
pub const OBJECT_GRAPH_KEY: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";
const VARIABLE_SUFFIX: &str = "/.ATTRIBUTES/VARIABLE_VALUE";
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const FOOTER_LEN: usize = 48;

/// `tensorflow.BundleHeaderProto` (the subset read here).
#[derive(Clone, PartialEq, Message)]
struct BundleHeaderProto {
    #[prost(int32, tag = "1")]
    num_shards: i32,
    /// 0 little-endian, 1 big-endian.
    #[prost(int32, tag = "2")]
    endianness: i32,
}

/// `tensorflow.TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, Message)]
struct DimProto {
    #[prost(int64, tag = "1")]
    size: i64,
}

/// `tensorflow.TensorShapeProto`.
#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    dim: Vec<DimProto>,
    #[prost(bool, tag = "3")]
    unknown_rank: bool,
}

/// `tensorflow.BundleEntryProto` (slices are detected, not read).
#[derive(Clone, PartialEq, Message)]
struct BundleEntryProto {
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
    #[prost(int32, tag = "3")]
    shard_id: i32,
    #[prost(int64, tag = "4")]
    offset: i64,
    #[prost(int64, tag = "5")]
    size: i64,
    #[prost(fixed32, tag = "6")]
    crc32c: u32,
    #[prost(bytes = "vec", repeated, tag = "7")]
    slices: Vec<Vec<u8>>,
}

/// `tensorflow.TrackableObjectGraph.TrackableObject.SerializedTensor`.
#[derive(Clone, PartialEq, Message)]
struct SerializedTensor {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    full_name: String,
    #[prost(string, tag = "3")]
    checkpoint_key: String,
}

/// `tensorflow.TrackableObjectGraph.TrackableObject` (attributes only).
#[derive(Clone, PartialEq, Message)]
struct TrackableObject {
    #[prost(message, repeated, tag = "2")]
    attributes: Vec<SerializedTensor>,
}

/// `tensorflow.TrackableObjectGraph`.
#[derive(Clone, PartialEq, Message)]
struct TrackableObjectGraph {
    #[prost(message, repeated, tag = "1")]
    nodes: Vec<TrackableObject>,
}

/// TensorFlow `DataType` values this reader decodes.
const DT_FLOAT: i32 = 1;
const DT_DOUBLE: i32 = 2;
const DT_INT32: i32 = 3;
const DT_UINT8: i32 = 4;
const DT_INT16: i32 = 5;
const DT_INT8: i32 = 6;
const DT_STRING: i32 = 7;
const DT_INT64: i32 = 9;
const DT_BOOL: i32 = 10;
const DT_BFLOAT16: i32 = 14;
const DT_UINT16: i32 = 17;
const DT_HALF: i32 = 19;
const DT_UINT32: i32 = 22;
const DT_UINT64: i32 = 23;

/// Element size in bytes of a numeric `DataType`, `None` for others.
fn elem_type(dtype: i32) -> Option<ElemType> {
    Some(match dtype {
        DT_BOOL => ElemType::Bool,
        DT_UINT8 => ElemType::U8,
        DT_INT8 => ElemType::I8,
        DT_INT16 => ElemType::I16,
        DT_UINT16 => ElemType::U16,
        DT_HALF => ElemType::F16,
        DT_BFLOAT16 => ElemType::BF16,
        DT_FLOAT => ElemType::F32,
        DT_INT32 => ElemType::I32,
        DT_UINT32 => ElemType::U32,
        DT_DOUBLE => ElemType::F64,
        DT_INT64 => ElemType::I64,
        DT_UINT64 => ElemType::U64,
        _ => return None,
    })
}

/// Reads a tensor bundle given its prefix (`…/ckpt-1`), its `.index` file,
/// or a SavedModel directory (reads `variables/variables`).
///
/// # Errors
/// [`InteropError::NotFound`] without an index, [`InteropError::Corrupt`] for a
/// malformed table, protobuf, shard or checksum, [`InteropError::Unsupported`]
/// for compressed blocks, big-endian or sliced (partitioned) variables and
/// dtypes other than bool, integers and floats.
pub fn read_tf_checkpoint(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let prefix = bundle_prefix(path.as_ref());
    let index_path = with_suffix(&prefix, ".index");
    if !index_path.is_file() {
        return Err(InteropError::NotFound { path: index_path });
    }
    let bytes = std::fs::read(&index_path).map_err(|e| corrupt(&index_path, e))?;
    let table = read_sstable(&bytes, &index_path)?;

    let header_bytes = table
        .iter()
        .find(|(k, _)| k.is_empty())
        .map(|(_, v)| v.as_slice())
        .ok_or_else(|| corrupt(&index_path, "no bundle header (empty key) in the index"))?;
    let header = BundleHeaderProto::decode(header_bytes)
        .map_err(|e| corrupt(&index_path, format!("bundle header: {e}")))?;
    if header.endianness != 0 {
        return Err(unsupported(&index_path, "big-endian bundle"));
    }
    let num_shards = usize::try_from(header.num_shards)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| corrupt(&index_path, format!("{} shards", header.num_shards)))?;

    let mut shards: HashMap<usize, Vec<u8>> = HashMap::new();
    let mut raw: BTreeMap<String, HostTensor> = BTreeMap::new();
    let mut graph: Option<TrackableObjectGraph> = None;
    for (key, value) in table.iter().filter(|(k, _)| !k.is_empty()) {
        let key = String::from_utf8(key.clone())
            .map_err(|_| corrupt(&index_path, "a key is not UTF-8"))?;
        let entry = BundleEntryProto::decode(value.as_slice())
            .map_err(|e| corrupt(&index_path, format!("entry `{key}`: {e}")))?;
        if key.contains("/.OPTIMIZER_SLOT/") {
            continue;
        }
        if !entry.slices.is_empty() {
            return Err(unsupported(
                &index_path,
                format!("`{key}` is a partitioned (sliced) variable"),
            ));
        }
        let shard = usize::try_from(entry.shard_id)
            .ok()
            .filter(|&s| s < num_shards)
            .ok_or_else(|| corrupt(&index_path, format!("`{key}`: shard {}", entry.shard_id)))?;
        if let std::collections::hash_map::Entry::Vacant(slot) = shards.entry(shard) {
            let data_path = with_suffix(&prefix, &format!(".data-{shard:05}-of-{num_shards:05}"));
            if !data_path.is_file() {
                return Err(InteropError::NotFound { path: data_path });
            }
            slot.insert(std::fs::read(&data_path).map_err(|e| corrupt(&data_path, e))?);
        }
        let data_path = with_suffix(&prefix, &format!(".data-{shard:05}-of-{num_shards:05}"));
        let data = &shards[&shard];
        let (start, len) = (
            usize::try_from(entry.offset).ok(),
            usize::try_from(entry.size).ok(),
        );
        let bytes = match (start, len) {
            (Some(s), Some(n)) if s.checked_add(n).is_some_and(|e| e <= data.len()) => {
                &data[s..s + n]
            }
            _ => {
                return Err(corrupt(
                    &data_path,
                    format!(
                        "`{key}`: bytes {}..+{} outside the {}-byte shard (truncated?)",
                        entry.offset,
                        entry.size,
                        data.len()
                    ),
                ));
            }
        };
        if entry.dtype != DT_STRING && crc32c_unmask(entry.crc32c) != crc32c(bytes) {
            return Err(corrupt(&data_path, format!("`{key}`: CRC32C mismatch")));
        }
        if key == OBJECT_GRAPH_KEY {
            let payload = decode_scalar_string(bytes)
                .ok_or_else(|| corrupt(&data_path, format!("`{key}`: bad string tensor")))?;
            graph = Some(
                TrackableObjectGraph::decode(payload)
                    .map_err(|e| corrupt(&data_path, format!("object graph: {e}")))?,
            );
            continue;
        }
        let shape = entry_shape(&entry).ok_or_else(|| {
            corrupt(
                &index_path,
                format!("`{key}`: unknown rank or negative dimension"),
            )
        })?;
        let tensor = decode_tensor(entry.dtype, &shape, bytes).map_err(|reason| {
            if elem_type(entry.dtype).is_none() {
                unsupported(&index_path, format!("`{key}`: {reason}"))
            } else {
                corrupt(&data_path, format!("`{key}`: {reason}"))
            }
        })?;
        raw.insert(key, tensor);
    }

    let tensors = rename(raw, graph.as_ref());
    Ok(Checkpoint {
        source: index_path,
        framework: Framework::TensorFlow,
        tensors,
    })
}

/// Renames bundle keys to the object graph's `full_name`s when they are all
/// present and unique, else strips `/.ATTRIBUTES/VARIABLE_VALUE`.
fn rename(
    raw: BTreeMap<String, HostTensor>,
    graph: Option<&TrackableObjectGraph>,
) -> BTreeMap<String, HostTensor> {
    let mut full: HashMap<&str, &str> = HashMap::new();
    if let Some(g) = graph {
        for node in &g.nodes {
            for a in &node.attributes {
                if !a.full_name.is_empty() {
                    full.insert(a.checkpoint_key.as_str(), a.full_name.as_str());
                }
            }
        }
    }
    let named: Vec<Option<&str>> = raw.keys().map(|k| full.get(k.as_str()).copied()).collect();
    let mut seen = std::collections::HashSet::new();
    let use_full = named.iter().all(|n| n.is_some_and(|n| seen.insert(n)));
    raw.into_iter()
        .zip(named)
        .map(|((key, t), name)| {
            let new = match name {
                Some(n) if use_full => n.to_string(),
                _ => key
                    .strip_suffix(VARIABLE_SUFFIX)
                    .unwrap_or(&key)
                    .to_string(),
            };
            (new, t)
        })
        .collect()
}

fn entry_shape(entry: &BundleEntryProto) -> Option<Vec<usize>> {
    let shape = entry.shape.clone().unwrap_or_default();
    if shape.unknown_rank {
        return None;
    }
    shape
        .dim
        .iter()
        .map(|d| usize::try_from(d.size).ok())
        .collect()
}

/// Decodes little-endian tensor bytes of a numeric dtype.
fn decode_tensor(
    dtype: i32,
    shape: &[usize],
    bytes: &[u8],
) -> std::result::Result<HostTensor, String> {
    let elem = elem_type(dtype).ok_or_else(|| format!("unsupported dtype DT_{dtype}"))?;
    let size = elem.size();
    let n = crate::host::checked_volume(shape)
        .ok_or_else(|| format!("shape {shape:?} has more elements than a usize counts"))?;
    if n.checked_mul(size) != Some(bytes.len()) {
        return Err(format!(
            "shape {shape:?} of {size}-byte elements needs {} bytes, entry has {}",
            n.saturating_mul(size),
            bytes.len()
        ));
    }
    let data = elem.decode(bytes, false)?;
    Ok(HostTensor {
        shape: shape.to_vec(),
        data,
    })
}

/// A scalar `DT_STRING` tensor in a bundle: varint length, masked CRC32C of
/// the length (4 bytes), the bytes.
fn decode_scalar_string(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = 0;
    let len = usize::try_from(read_varint(bytes, &mut pos)?).ok()?;
    let start = pos.checked_add(4)?;
    bytes.get(start..start.checked_add(len)?)
}

fn bundle_prefix(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.join("variables").join("variables");
    }
    let s = path.to_string_lossy();
    if let Some(p) = s.strip_suffix(".index") {
        return PathBuf::from(p);
    }
    if let Some(i) = s.rfind(".data-") {
        return PathBuf::from(&s[..i]);
    }
    path.to_path_buf()
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> InteropError {
    InteropError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn unsupported(path: &Path, reason: impl std::fmt::Display) -> InteropError {
    InteropError::Unsupported {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

// ---------------------------------------------------------------- SSTable

/// All `(key, value)` pairs of a LevelDB-format table, in key order.
///
/// # Errors
/// [`InteropError::Corrupt`] for a short file, a bad magic number, a block
/// outside the file, a checksum mismatch or a malformed entry;
/// [`InteropError::Unsupported`] for compressed blocks.
pub fn read_sstable(bytes: &[u8], path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.len() < FOOTER_LEN {
        return Err(corrupt(
            path,
            format!("{} bytes: too short for an SSTable footer", bytes.len()),
        ));
    }
    let footer = &bytes[bytes.len() - FOOTER_LEN..];
    let magic = u64::from_le_bytes(footer[40..48].try_into().unwrap_or_default());
    if magic != TABLE_MAGIC {
        return Err(corrupt(
            path,
            "SSTable magic number missing (truncated or not an index)",
        ));
    }
    let mut pos = 0;
    let bad_footer = || corrupt(path, "malformed SSTable footer");
    let _meta = read_handle(footer, &mut pos).ok_or_else(bad_footer)?;
    let index = read_handle(footer, &mut pos).ok_or_else(bad_footer)?;
    let index_block = read_block(bytes, index, path)?;
    let mut out = Vec::new();
    for (_, handle) in block_entries(&index_block, path)? {
        let mut p = 0;
        let h =
            read_handle(&handle, &mut p).ok_or_else(|| corrupt(path, "malformed block handle"))?;
        let block = read_block(bytes, h, path)?;
        out.extend(block_entries(&block, path)?);
    }
    Ok(out)
}

fn read_handle(b: &[u8], pos: &mut usize) -> Option<(usize, usize)> {
    let off = usize::try_from(read_varint(b, pos)?).ok()?;
    let size = usize::try_from(read_varint(b, pos)?).ok()?;
    Some((off, size))
}

/// A block's contents after checking its trailer (type byte + masked CRC32C).
fn read_block(bytes: &[u8], (off, size): (usize, usize), path: &Path) -> Result<Vec<u8>> {
    let end = off
        .checked_add(size)
        .and_then(|e| e.checked_add(5))
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| corrupt(path, format!("block at {off}+{size} lies outside the file")))?;
    let contents = &bytes[off..off + size];
    let kind = bytes[off + size];
    let stored = u32::from_le_bytes(bytes[off + size + 1..end].try_into().unwrap_or_default());
    let actual = crc32c_extend(crc32c(contents), &[kind]);
    if crc32c_unmask(stored) != actual {
        return Err(corrupt(path, format!("block at {off}: checksum mismatch")));
    }
    match kind {
        0 => Ok(contents.to_vec()),
        1 => Err(unsupported(path, "snappy-compressed SSTable block")),
        k => Err(unsupported(
            path,
            format!("SSTable block compression type {k}"),
        )),
    }
}

/// Entries of one block, keys rebuilt from their shared prefixes.
fn block_entries(block: &[u8], path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let bad = |what: &str| corrupt(path, format!("malformed SSTable block: {what}"));
    if block.len() < 4 {
        return Err(bad("shorter than its restart count"));
    }
    let n_restarts = u32::from_le_bytes(block[block.len() - 4..].try_into().unwrap_or_default());
    let restart_bytes = usize::try_from(n_restarts)
        .ok()
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(4))
        .filter(|&n| n <= block.len())
        .ok_or_else(|| bad("restart array larger than the block"))?;
    let data = &block[..block.len() - restart_bytes];
    let mut out = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let shared = read_varint(data, &mut pos).ok_or_else(|| bad("entry header"))? as usize;
        let unshared = read_varint(data, &mut pos).ok_or_else(|| bad("entry header"))? as usize;
        let vlen = read_varint(data, &mut pos).ok_or_else(|| bad("entry header"))? as usize;
        if shared > key.len() {
            return Err(bad("shared prefix longer than the previous key"));
        }
        let kend = pos
            .checked_add(unshared)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| bad("key past the end"))?;
        key.truncate(shared);
        key.extend_from_slice(&data[pos..kend]);
        let vend = kend
            .checked_add(vlen)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| bad("value past the end"))?;
        out.push((key.clone(), data[kend..vend].to_vec()));
        pos = vend;
    }
    Ok(out)
}

fn read_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

// ---------------------------------------------------------------- CRC32C

const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82f6_3b78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32C: [u32; 256] = crc32c_table();

/// CRC32C (Castagnoli) of `data`.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    crc32c_extend(0, data)
}

fn crc32c_extend(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC32C[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn crc32c_unmask(masked: u32) -> u32 {
    let rot = masked.wrapping_sub(0xa282_ead8);
    rot.rotate_left(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_rfc_3720_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    }

    #[test]
    fn a_shape_whose_product_overflows_is_an_error_not_a_panic() {
        // The element count of a bundle entry's shape overflowed (a debug
        // panic, a wrapped length check in release).
        let err = decode_tensor(DT_FLOAT, &[1 << 32, 1 << 32], &[]).unwrap_err();
        assert!(err.contains("more elements"), "{err}");
    }

    #[test]
    fn varint_rejects_truncation() {
        let mut p = 0;
        assert_eq!(read_varint(&[0xac, 0x02], &mut p), Some(300));
        let mut p = 0;
        assert_eq!(read_varint(&[0xac], &mut p), None);
    }
}
