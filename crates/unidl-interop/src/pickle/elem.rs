//! The element types of PyTorch storages and NumPy arrays.

use crate::host::HostData;

/// Element type of a PyTorch storage or NumPy array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    /// float32.
    F32,
    /// float64.
    F64,
    /// float16 (widened to f32).
    F16,
    /// bfloat16 (widened to f32).
    BF16,
    /// int64.
    I64,
    /// int32.
    I32,
    /// int16.
    I16,
    /// int8.
    I8,
    /// uint8.
    U8,
    /// uint16.
    U16,
    /// uint32.
    U32,
    /// uint64 (values above `i64::MAX` are refused).
    U64,
    /// bool (one byte each).
    Bool,
}

impl ElemType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElemType::F64 | ElemType::I64 | ElemType::U64 => 8,
            ElemType::F32 | ElemType::I32 | ElemType::U32 => 4,
            ElemType::F16 | ElemType::BF16 | ElemType::I16 | ElemType::U16 => 2,
            ElemType::I8 | ElemType::U8 | ElemType::Bool => 1,
        }
    }

    /// The dtype of a PyTorch storage class name (`FloatStorage`, …).
    pub fn from_torch_storage(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => ElemType::F32,
            "DoubleStorage" => ElemType::F64,
            "HalfStorage" => ElemType::F16,
            "BFloat16Storage" => ElemType::BF16,
            "LongStorage" => ElemType::I64,
            "IntStorage" => ElemType::I32,
            "ShortStorage" => ElemType::I16,
            "CharStorage" => ElemType::I8,
            "ByteStorage" => ElemType::U8,
            "BoolStorage" => ElemType::Bool,
            _ => return None,
        })
    }

    /// The dtype of a NumPy type string without byte order (`f4`, `i8`, `b1`, …).
    pub fn from_numpy(code: &str) -> Option<Self> {
        Some(match code {
            "f4" => ElemType::F32,
            "f8" => ElemType::F64,
            "f2" => ElemType::F16,
            "i8" => ElemType::I64,
            "i4" => ElemType::I32,
            "i2" => ElemType::I16,
            "i1" => ElemType::I8,
            "u1" => ElemType::U8,
            "u2" => ElemType::U16,
            "u4" => ElemType::U32,
            "u8" => ElemType::U64,
            "b1" => ElemType::Bool,
            _ => return None,
        })
    }

    /// Decodes `n` elements from `bytes` (little-endian unless `big_endian`).
    pub fn decode(self, bytes: &[u8], big_endian: bool) -> std::result::Result<HostData, String> {
        let sz = self.size();
        if !bytes.len().is_multiple_of(sz) {
            return Err(format!(
                "{} bytes is not a whole number of {sz}-byte elements",
                bytes.len()
            ));
        }
        let chunk = |c: &[u8]| -> [u8; 8] {
            let mut a = [0u8; 8];
            if big_endian {
                for (i, b) in c.iter().rev().enumerate() {
                    a[i] = *b;
                }
            } else {
                a[..c.len()].copy_from_slice(c);
            }
            a
        };
        let it = bytes.chunks_exact(sz).map(chunk);
        Ok(match self {
            ElemType::F32 => HostData::F32(
                it.map(|a| f32::from_le_bytes([a[0], a[1], a[2], a[3]]))
                    .collect(),
            ),
            ElemType::F64 => HostData::F64(it.map(f64::from_le_bytes).collect()),
            ElemType::F16 => HostData::F32(
                it.map(|a| half::f16::from_le_bytes([a[0], a[1]]).to_f32())
                    .collect(),
            ),
            ElemType::BF16 => HostData::F32(
                it.map(|a| half::bf16::from_le_bytes([a[0], a[1]]).to_f32())
                    .collect(),
            ),
            ElemType::I64 => HostData::I64(it.map(i64::from_le_bytes).collect()),
            ElemType::I32 => HostData::I64(
                it.map(|a| i64::from(i32::from_le_bytes([a[0], a[1], a[2], a[3]])))
                    .collect(),
            ),
            ElemType::I16 => HostData::I64(
                it.map(|a| i64::from(i16::from_le_bytes([a[0], a[1]])))
                    .collect(),
            ),
            ElemType::I8 => HostData::I64(it.map(|a| i64::from(a[0] as i8)).collect()),
            ElemType::U8 => HostData::I64(it.map(|a| i64::from(a[0])).collect()),
            ElemType::U16 => HostData::I64(
                it.map(|a| i64::from(u16::from_le_bytes([a[0], a[1]])))
                    .collect(),
            ),
            ElemType::U32 => HostData::I64(
                it.map(|a| i64::from(u32::from_le_bytes([a[0], a[1], a[2], a[3]])))
                    .collect(),
            ),
            ElemType::U64 => HostData::I64(
                it.map(|a| i64::try_from(u64::from_le_bytes(a)))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| "uint64 value above i64::MAX".to_string())?,
            ),
            ElemType::Bool => HostData::Bool(it.map(|a| a[0] != 0).collect()),
        })
    }
}
