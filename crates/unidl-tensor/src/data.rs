//! Nested host data for [`crate::initialize`] (A.1.2.1) and its flattening.

use crate::error::{Result, TensorError};
use unidl_backend::DType;

/// Nested content of a tensor, like a Python list of lists.
///
/// Build it with `From`: scalars (`f32`, `f64`, `i64`, `i32`, `u8`, `bool`,
/// `&str`, `String`, [`Complex`]), `Vec<T>` and arrays `[T; N]` of anything
/// convertible, to any depth.
///
/// ```
/// use unidl_tensor::Data;
/// let d: Data = vec![vec![1.0, 2.0], vec![3.0, 4.0]].into();
/// let s: Data = vec!["a", "b"].into();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// A real number.
    Float(f64),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// A complex number.
    Complex(Complex),
    /// A list of elements or sub-lists.
    List(Vec<Data>),
}

/// A complex64 value: two f32 parts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Complex {
    /// Real part.
    pub re: f32,
    /// Imaginary part.
    pub im: f32,
}

impl Complex {
    /// `re + im·i`.
    pub fn new(re: f32, im: f32) -> Self {
        Complex { re, im }
    }
}

macro_rules! from_scalar {
    ($($t:ty => $v:ident($conv:expr)),* $(,)?) => {$(
        impl From<$t> for Data {
            fn from(x: $t) -> Self {
                #[allow(clippy::redundant_closure_call)]
                Data::$v(($conv)(x))
            }
        }
    )*};
}

from_scalar! {
    f64 => Float(|x| x),
    f32 => Float(|x: f32| x as f64),
    i64 => Int(|x| x),
    i32 => Int(|x: i32| x as i64),
    i16 => Int(|x: i16| x as i64),
    i8 => Int(|x: i8| x as i64),
    u8 => Int(|x: u8| x as i64),
    usize => Int(|x: usize| x as i64),
    bool => Bool(|x| x),
    String => Str(|x| x),
    &str => Str(|x: &str| x.to_string()),
    Complex => Complex(|x| x),
}

impl<T: Into<Data>> From<Vec<T>> for Data {
    fn from(v: Vec<T>) -> Self {
        Data::List(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Data>, const N: usize> From<[T; N]> for Data {
    fn from(v: [T; N]) -> Self {
        Data::List(v.into_iter().map(Into::into).collect())
    }
}

/// Flattened data: the shape, the inferred dtype and the values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Flat {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub values: FlatValues,
}

/// Row-major values of one family.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FlatValues {
    Real(Vec<f64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
    Complex(Vec<Complex>),
}

#[derive(Default)]
struct Walk {
    shape: Vec<usize>,
    any_float: bool,
    any_int: bool,
    any_bool: bool,
    any_str: bool,
    any_complex: bool,
    leaves: Vec<Data>,
}

fn path(p: &[usize]) -> String {
    if p.is_empty() {
        "the top level".to_string()
    } else {
        p.iter().map(|i| format!("[{i}]")).collect()
    }
}

impl Walk {
    fn visit(&mut self, d: &Data, depth: usize, pos: &mut Vec<usize>) -> Result<()> {
        match d {
            Data::List(items) => {
                if depth == self.shape.len() {
                    if depth > 0 && !self.leaves.is_empty() {
                        return Err(TensorError::BadData {
                            position: path(pos),
                            reason: "a list where a scalar was found before".into(),
                        });
                    }
                    if self.leaves.is_empty() && depth == self.shape.len() {
                        self.shape.push(items.len());
                    }
                } else if depth > self.shape.len() {
                    return Err(TensorError::BadData {
                        position: path(pos),
                        reason: "a list where a scalar was found before".into(),
                    });
                }
                if self.shape[depth] != items.len() {
                    return Err(TensorError::Ragged {
                        position: path(pos),
                        expected: self.shape[depth],
                        found: items.len(),
                    });
                }
                for (i, item) in items.iter().enumerate() {
                    pos.push(i);
                    self.visit(item, depth + 1, pos)?;
                    pos.pop();
                }
                Ok(())
            }
            scalar => {
                if depth != self.shape.len() {
                    return Err(TensorError::BadData {
                        position: path(pos),
                        reason: format!(
                            "a scalar at depth {depth} where lists of depth {} were found before",
                            self.shape.len()
                        ),
                    });
                }
                match scalar {
                    Data::Float(_) => self.any_float = true,
                    Data::Int(_) => self.any_int = true,
                    Data::Bool(_) => self.any_bool = true,
                    Data::Str(_) => self.any_str = true,
                    Data::Complex(_) => self.any_complex = true,
                    Data::List(_) => unreachable!(),
                }
                if self.any_str
                    && (self.any_float || self.any_int || self.any_bool || self.any_complex)
                {
                    return Err(TensorError::BadData {
                        position: path(pos),
                        reason: "strings mixed with numbers".into(),
                    });
                }
                self.leaves.push(scalar.clone());
                Ok(())
            }
        }
    }
}

/// Flattens nested data, checking that it is rectangular, and converts it to
/// `dtype` (or the inferred one: string > complex64 > float32 > int64 > bool).
pub(crate) fn flatten(data: &Data, dtype: Option<DType>) -> Result<Flat> {
    let mut w = Walk::default();
    w.visit(data, 0, &mut Vec::new())?;
    // An empty innermost list leaves its depth as the shape; fine.
    let inferred = if w.any_str {
        DType::String
    } else if w.any_complex {
        DType::Complex64
    } else if w.any_float {
        DType::Float32
    } else if w.any_int {
        DType::Int64
    } else if w.any_bool {
        DType::Bool
    } else {
        DType::Float32
    };
    let dtype = dtype.unwrap_or(inferred);
    let leaves = w.leaves;
    let bad = |to: DType| TensorError::BadData {
        position: "data".into(),
        reason: format!("values of dtype {inferred} cannot be converted to {to}"),
    };
    let values = match dtype {
        DType::String => {
            if inferred != DType::String && !leaves.is_empty() {
                return Err(bad(dtype));
            }
            FlatValues::Str(
                leaves
                    .into_iter()
                    .map(|d| match d {
                        Data::Str(s) => s,
                        _ => unreachable!(),
                    })
                    .collect(),
            )
        }
        DType::Complex64 => {
            if inferred == DType::String {
                return Err(bad(dtype));
            }
            FlatValues::Complex(leaves.into_iter().map(|d| as_complex(&d)).collect())
        }
        DType::Bool => {
            if matches!(inferred, DType::String | DType::Complex64) {
                return Err(bad(dtype));
            }
            FlatValues::Bool(leaves.iter().map(|d| as_real(d) != 0.0).collect())
        }
        _ => {
            if matches!(inferred, DType::String | DType::Complex64) {
                return Err(bad(dtype));
            }
            FlatValues::Real(leaves.iter().map(as_real).collect())
        }
    };
    Ok(Flat {
        shape: w.shape,
        dtype,
        values,
    })
}

fn as_real(d: &Data) -> f64 {
    match d {
        Data::Float(x) => *x,
        Data::Int(x) => *x as f64,
        Data::Bool(b) => f64::from(u8::from(*b)),
        _ => f64::NAN,
    }
}

fn as_complex(d: &Data) -> Complex {
    match d {
        Data::Complex(c) => *c,
        other => Complex::new(as_real(other) as f32, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_shape_and_dtype() {
        let f = flatten(&vec![vec![1, 2, 3], vec![4, 5, 6]].into(), None).unwrap();
        assert_eq!(f.shape, vec![2, 3]);
        assert_eq!(f.dtype, DType::Int64);
        let f = flatten(&Data::from(2.5), None).unwrap();
        assert!(f.shape.is_empty());
        assert_eq!(f.dtype, DType::Float32);
    }

    #[test]
    fn ragged_names_position() {
        let d: Data = vec![vec![vec![1, 2], vec![3, 4]], vec![vec![5, 6], vec![7]]].into();
        let e = flatten(&d, None).unwrap_err();
        assert_eq!(
            e,
            TensorError::Ragged {
                position: "[1][1]".into(),
                expected: 2,
                found: 1
            }
        );
    }

    #[test]
    fn mixing_depths_and_kinds_is_an_error() {
        let d = Data::List(vec![Data::Int(1), Data::List(vec![Data::Int(2)])]);
        assert!(matches!(
            flatten(&d, None),
            Err(TensorError::BadData { .. })
        ));
        let d = Data::List(vec![Data::Int(1), Data::Str("x".into())]);
        assert!(matches!(
            flatten(&d, None),
            Err(TensorError::BadData { .. })
        ));
    }
}
