//! The standard's element types (A.1.2.1) and their mapping onto Burn.

use std::fmt;

/// Element type of a unidl tensor.
///
/// Covers the standard's list (float32, float64, int64, int32, int16, int8,
/// uint8, string, bool, complex64) plus the half-precision floats Burn has.
/// `String` and `Complex64` have no Burn dtype: unidl stores strings on the
/// host and complex numbers as a (re, im) pair of float32 tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float.
    Float32,
    /// 64-bit IEEE float.
    Float64,
    /// 16-bit IEEE float.
    Float16,
    /// bfloat16.
    BFloat16,
    /// Signed 64-bit integer.
    Int64,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 8-bit integer.
    Int8,
    /// Unsigned 8-bit integer.
    UInt8,
    /// Boolean.
    Bool,
    /// UTF-8 string (host memory only).
    String,
    /// Complex number of two float32 parts.
    Complex64,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 12] = [
        DType::Float32,
        DType::Float64,
        DType::Float16,
        DType::BFloat16,
        DType::Int64,
        DType::Int32,
        DType::Int16,
        DType::Int8,
        DType::UInt8,
        DType::Bool,
        DType::String,
        DType::Complex64,
    ];

    /// The standard's spelling (`float32`, `int64`, `complex64`, …).
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Float16 => "float16",
            DType::BFloat16 => "bfloat16",
            DType::Int64 => "int64",
            DType::Int32 => "int32",
            DType::Int16 => "int16",
            DType::Int8 => "int8",
            DType::UInt8 => "uint8",
            DType::Bool => "bool",
            DType::String => "string",
            DType::Complex64 => "complex64",
        }
    }

    /// Parses the standard's spelling (also accepts `f32`, `i64`, … and `str`).
    pub fn parse(name: &str) -> Option<DType> {
        let d = match name.to_ascii_lowercase().as_str() {
            "float32" | "f32" | "float" => DType::Float32,
            "float64" | "f64" | "double" => DType::Float64,
            "float16" | "f16" | "half" => DType::Float16,
            "bfloat16" | "bf16" => DType::BFloat16,
            "int64" | "i64" | "long" => DType::Int64,
            "int32" | "i32" | "int" => DType::Int32,
            "int16" | "i16" => DType::Int16,
            "int8" | "i8" => DType::Int8,
            "uint8" | "u8" => DType::UInt8,
            "bool" => DType::Bool,
            "string" | "str" => DType::String,
            "complex64" | "c64" => DType::Complex64,
            _ => return None,
        };
        Some(d)
    }

    /// True for the float dtypes (not complex).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::Float32 | DType::Float64 | DType::Float16 | DType::BFloat16
        )
    }

    /// True for the integer dtypes.
    pub fn is_int(self) -> bool {
        matches!(
            self,
            DType::Int64 | DType::Int32 | DType::Int16 | DType::Int8 | DType::UInt8
        )
    }

    /// The Burn dtype that stores this one on a device; `None` for string and
    /// complex64, which Burn does not have.
    pub fn to_burn(self) -> Option<burn::tensor::DType> {
        use burn::tensor::DType as B;
        Some(match self {
            DType::Float32 => B::F32,
            DType::Float64 => B::F64,
            DType::Float16 => B::F16,
            DType::BFloat16 => B::BF16,
            DType::Int64 => B::I64,
            DType::Int32 => B::I32,
            DType::Int16 => B::I16,
            DType::Int8 => B::I8,
            DType::UInt8 => B::U8,
            DType::Bool => B::Bool(burn::tensor::BoolStore::Native),
            DType::String | DType::Complex64 => return None,
        })
    }

    /// The unidl dtype for a Burn dtype, if unidl exposes it.
    pub fn from_burn(dtype: burn::tensor::DType) -> Option<DType> {
        use burn::tensor::DType as B;
        Some(match dtype {
            B::F32 | B::Flex32 => DType::Float32,
            B::F64 => DType::Float64,
            B::F16 => DType::Float16,
            B::BF16 => DType::BFloat16,
            B::I64 => DType::Int64,
            B::I32 => DType::Int32,
            B::I16 => DType::Int16,
            B::I8 => DType::Int8,
            B::U8 => DType::UInt8,
            B::Bool(_) => DType::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
