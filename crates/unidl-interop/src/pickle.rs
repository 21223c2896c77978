//! A restricted unpickler: reads Python pickles (protocols 0–5) that hold
//! dicts, lists, tuples, strings, numbers, PyTorch tensors and NumPy arrays,
//! and **never executes code**.
//!
//! A general unpickler imports any `module.name` a pickle names (`GLOBAL`,
//! `STACK_GLOBAL`) and calls it (`REDUCE`, `NEWOBJ`, `BUILD`); a hostile file
//! uses this to run `os.system`. This one knows a fixed whitelist of globals
//! and what each builds, and refuses everything else with
//! [`InteropError::Unsupported`] naming the global:
//!
//! | global | what it builds here |
//! |---|---|
//! | `collections.OrderedDict` | an empty dict (`BUILD` attributes such as `_metadata` are ignored) |
//! | `torch._utils._rebuild_tensor_v2` | a [`TorchTensorRef`] (storage, offset, size, stride) |
//! | `torch._utils._rebuild_parameter`, `_rebuild_parameter_with_state` | its tensor argument |
//! | `torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage` | a storage dtype (in persistent ids) |
//! | `numpy.core.multiarray._reconstruct` (also `numpy._core.…`) with `numpy.ndarray` | an array, filled by `BUILD` |
//! | `numpy.dtype` | a dtype (`BUILD` sets its byte order) |
//! | `numpy.core.multiarray.scalar` | a 0-d array |
//! | `builtins.tuple`, `builtins.list` (and `__builtin__`) | a tuple or list of their argument (Paddle wraps each tensor as `(name, array)`) |
//!
//! `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, the extension registry and any other
//! global are refused. Persistent ids (PyTorch's storages) are handed to a
//! caller-supplied function.
//!
//! Bounds (the file decides both, so both are checked, D28): containers nest
//! at most [`MAX_DEPTH`] deep (deeper nesting would overflow the stack when
//! the value is dropped or walked), and the copies that `DUP`, `PUT` and
//! `GET` make may add up to at most four nodes per byte of the pickle plus
//! 2^20 (a few bytes that copy a list into itself again and again would
//! otherwise build an exponentially large value). Either is
//! [`InteropError::Corrupt`].
//!
//! Limitation: values are copied, not shared; a container that is filled
//! after it was memoized and later referenced again through the memo is seen
//! as it was when memoized. State dicts never do this.

use std::path::Path;
use std::rc::Rc;

use crate::error::{InteropError, Result};
use crate::host::{HostData, HostTensor};

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

/// A reference to a PyTorch storage, as a persistent id names it.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// Element type.
    pub dtype: ElemType,
    /// The storage key (`data/<key>` in a zip checkpoint).
    pub key: String,
}

/// What `torch._utils._rebuild_tensor_v2` would build: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchTensorRef {
    /// The storage.
    pub storage: StorageRef,
    /// Offset into the storage, in elements.
    pub offset: usize,
    /// Shape.
    pub size: Vec<usize>,
    /// Strides, in elements.
    pub stride: Vec<usize>,
}

/// A NumPy dtype built by `numpy.dtype(code, …)`.
#[derive(Debug, Clone, PartialEq)]
pub struct NumpyDtype {
    /// The type code without byte order (`f4`).
    pub code: String,
    /// Byte order from `BUILD` (`<`, `>`, `|`, `=`).
    pub byteorder: char,
}

/// A value on the unpickler's stack.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A larger integer, as its little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    /// A float.
    Float(f64),
    /// A `str`.
    Str(String),
    /// `bytes` or `bytearray` (or a Python 2 `str`).
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A whitelisted global (`module.name`), not yet called.
    Global(String),
    /// A PyTorch storage (from a persistent id).
    Storage(StorageRef),
    /// A PyTorch tensor.
    TorchTensor(TorchTensorRef),
    /// A NumPy array (complete after `BUILD`).
    NdArray(Rc<HostTensor>),
    /// A NumPy array created by `_reconstruct`, waiting for its `BUILD`.
    EmptyNdArray,
    /// A NumPy dtype.
    Dtype(NumpyDtype),
}

impl Value {
    /// A short name of the value's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::TorchTensor(_) => "tensor",
            Value::NdArray(_) | Value::EmptyNdArray => "ndarray",
            Value::Dtype(_) => "dtype",
        }
    }

    fn as_usize(&self) -> Option<usize> {
        match self {
            Value::Int(i) => usize::try_from(*i).ok(),
            _ => None,
        }
    }

    fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }
}

/// Globals the unpickler accepts, by `module.name`.
const WHITELIST: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.ndarray",
    "numpy.dtype",
    "builtins.tuple",
    "builtins.list",
    "__builtin__.tuple",
    "__builtin__.list",
];

fn allowed_global(name: &str) -> bool {
    WHITELIST.contains(&name)
        || name
            .strip_prefix("torch.")
            .is_some_and(|s| ElemType::from_torch_storage(s).is_some())
}

const MARK_ERR: &str = "stack underflow (no MARK)";

/// The unpickler's state over one byte string.
struct Machine<'a, F> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
    stack: Vec<Value>,
    /// Nesting depth of each stack entry (0 for scalars, 1 for an empty
    /// container; an upper bound for values built by `REDUCE`/`BUILD`).
    depths: Vec<usize>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u64, (Value, usize)>,
    /// Nodes copied so far by `DUP`, `PUT` and `GET`, and the most allowed.
    copied: usize,
    copy_budget: usize,
    persistent: F,
}

/// Deepest container nesting a pickle may build (state dicts nest a few
/// levels).
pub const MAX_DEPTH: usize = 128;

/// The size of `v` in nodes (strings and bytes count one per 16 bytes),
/// walked without recursion; stops counting past `limit`.
fn weight(v: &Value, limit: usize) -> usize {
    let mut total = 0usize;
    let mut todo: Vec<&Value> = vec![v];
    while let Some(v) = todo.pop() {
        total += 1;
        match v {
            Value::Str(x) | Value::Global(x) => total += x.len() / 16,
            Value::Bytes(b) | Value::BigInt(b) => total += b.len() / 16,
            Value::List(items) | Value::Tuple(items) => todo.extend(items),
            Value::Dict(pairs) => todo.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
            Value::TorchTensor(t) => total += (t.size.len() + t.stride.len()) / 4,
            _ => {}
        }
        if total > limit {
            break;
        }
    }
    total
}

/// Reads one pickle from `data` and returns its value and the number of bytes
/// consumed (pickles can be concatenated, as PyTorch's legacy format does).
///
/// `persistent_load` receives each persistent id (`BINPERSID`/`PERSID`) and
/// returns the value to use; PyTorch's readers turn
/// `('storage', torch.FloatStorage, key, location, numel)` into
/// [`Value::Storage`]. `path` only names the file in errors.
pub fn unpickle<F>(data: &[u8], path: &Path, persistent_load: F) -> Result<(Value, usize)>
where
    F: FnMut(Value) -> Result<Value>,
{
    let mut m = Machine {
        data,
        pos: 0,
        path,
        stack: Vec::new(),
        depths: Vec::new(),
        marks: Vec::new(),
        memo: std::collections::HashMap::new(),
        copied: 0,
        copy_budget: data.len().saturating_mul(4).saturating_add(1 << 20),
        persistent: persistent_load,
    };
    let v = m.run()?;
    Ok((v, m.pos))
}

/// The persistent-id loader for PyTorch state dicts:
/// `('storage', torch.<T>Storage, key, location, numel[, view_metadata])` → [`Value::Storage`].
pub fn torch_persistent_load(path: &Path) -> impl FnMut(Value) -> Result<Value> + '_ {
    move |pid| {
        let bad = |why: &str| InteropError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("persistent id {pid:?}: {why}"),
        };
        let Value::Tuple(items) = &pid else {
            return Err(bad("not a tuple"));
        };
        match items.as_slice() {
            [Value::Str(tag), Value::Global(class), key, _location, ..] if tag == "storage" => {
                let dtype = class
                    .strip_prefix("torch.")
                    .and_then(ElemType::from_torch_storage)
                    .ok_or_else(|| InteropError::Unsupported {
                        path: path.to_path_buf(),
                        reason: format!("storage type `{class}`"),
                    })?;
                let key = match key {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => return Err(bad("storage key is not a string")),
                };
                Ok(Value::Storage(StorageRef { dtype, key }))
            }
            _ => Err(bad("not a ('storage', type, key, location, numel) tuple")),
        }
    }
}

/// A persistent-id loader that refuses every persistent id (plain pickles).
pub fn no_persistent_load(path: &Path) -> impl FnMut(Value) -> Result<Value> + '_ {
    move |pid| {
        Err(InteropError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("persistent id {pid:?} in a plain pickle"),
        })
    }
}

impl<F> Machine<'_, F>
where
    F: FnMut(Value) -> Result<Value>,
{
    fn corrupt(&self, reason: impl Into<String>) -> InteropError {
        InteropError::Corrupt {
            path: self.path.to_path_buf(),
            reason: format!("pickle at byte {}: {}", self.pos, reason.into()),
        }
    }

    fn unsupported(&self, reason: impl Into<String>) -> InteropError {
        InteropError::Unsupported {
            path: self.path.to_path_buf(),
            reason: format!("pickle at byte {}: {}", self.pos, reason.into()),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.data.len() - self.pos < n {
            return Err(self.corrupt(format!(
                "truncated: needs {n} more bytes, {} left",
                self.data.len() - self.pos
            )));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len_u64(&mut self, n: u64) -> Result<usize> {
        usize::try_from(n).map_err(|_| self.corrupt(format!("length {n} too large")))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.corrupt("truncated: unterminated text line"))?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }

    fn push(&mut self, v: Value, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.corrupt(format!("containers nested deeper than {MAX_DEPTH}")));
        }
        self.stack.push(v);
        self.depths.push(depth);
        Ok(())
    }

    /// Pops a value with its depth.
    fn pop_d(&mut self) -> Result<(Value, usize)> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.corrupt("stack underflow"));
        }
        let v = self
            .stack
            .pop()
            .ok_or_else(|| self.corrupt("stack underflow"))?;
        Ok((v, self.depths.pop().unwrap_or(0)))
    }

    fn pop(&mut self) -> Result<Value> {
        Ok(self.pop_d()?.0)
    }

    /// Records that the top container now holds a value `child` deep.
    fn deepen_top(&mut self, child: usize) -> Result<()> {
        let d = child + 1;
        if d > MAX_DEPTH {
            return Err(self.corrupt(format!("containers nested deeper than {MAX_DEPTH}")));
        }
        if let Some(top) = self.depths.last_mut() {
            *top = (*top).max(d);
        }
        Ok(())
    }

    /// Charges a copy of the top value against the copy budget.
    fn charge_top(&mut self) -> Result<()> {
        let left = self.copy_budget.saturating_sub(self.copied);
        let w = self.stack.last().map_or(0, |v| weight(v, left));
        self.charge(w)
    }

    fn charge(&mut self, w: usize) -> Result<()> {
        self.copied = self.copied.saturating_add(w);
        if self.copied > self.copy_budget {
            return Err(self.corrupt(format!(
                "DUP/PUT/GET copies exceed {} nodes (a pickle that copies itself into an exponentially large value?)",
                self.copy_budget
            )));
        }
        Ok(())
    }

    fn top(&mut self) -> Result<&mut Value> {
        let pos = self.pos;
        let path = self.path;
        self.stack.last_mut().ok_or_else(|| InteropError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("pickle at byte {pos}: empty stack"),
        })
    }

    /// Pops everything above the last mark, with the deepest of their depths.
    fn pop_mark_d(&mut self) -> Result<(Vec<Value>, usize)> {
        let m = self.marks.pop().ok_or_else(|| self.corrupt(MARK_ERR))?;
        if m > self.stack.len() {
            return Err(self.corrupt(MARK_ERR));
        }
        let depth = self.depths.split_off(m).into_iter().max().unwrap_or(0);
        Ok((self.stack.split_off(m), depth))
    }

    fn str_of(&self, b: &[u8]) -> Result<String> {
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt("string is not UTF-8"))
    }

    fn push_str(&mut self, n: usize) -> Result<()> {
        let b = self.take(n)?.to_vec();
        let s = self.str_of(&b)?;
        self.push(Value::Str(s), 0)
    }

    fn push_bytes(&mut self, n: usize) -> Result<()> {
        let b = self.take(n)?.to_vec();
        self.push(Value::Bytes(b), 0)
    }

    fn memo_put(&mut self, idx: u64) -> Result<()> {
        self.charge_top()?;
        let v = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| self.corrupt("memo put on an empty stack"))?;
        let d = self.depths.last().copied().unwrap_or(0);
        self.memo.insert(idx, (v, d));
        Ok(())
    }

    fn memo_get(&mut self, idx: u64) -> Result<()> {
        let left = self.copy_budget.saturating_sub(self.copied);
        let w = self
            .memo
            .get(&idx)
            .map(|(v, _)| weight(v, left))
            .ok_or_else(|| self.corrupt(format!("memo key {idx} not found")))?;
        self.charge(w)?;
        let (v, d) = self.memo.get(&idx).cloned().unwrap_or((Value::None, 0));
        self.push(v, d)
    }

    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        let full = format!("{module}.{name}");
        if !allowed_global(&full) {
            return Err(self.unsupported(format!(
                "refusing global `{full}`: loading it would execute code; only tensors, arrays and plain containers are read"
            )));
        }
        self.push(Value::Global(full), 0)
    }

    fn long(&self, b: &[u8]) -> Result<Value> {
        let _ = self.path;
        if b.is_empty() {
            return Ok(Value::Int(0));
        }
        if b.len() > 8 {
            return Ok(Value::BigInt(b.to_vec()));
        }
        let neg = b[b.len() - 1] & 0x80 != 0;
        let mut a = [if neg { 0xff } else { 0 }; 8];
        a[..b.len()].copy_from_slice(b);
        Ok(Value::Int(i64::from_le_bytes(a)))
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(self.unsupported(format!("pickle protocol {p}")));
                    }
                }
                0x95 => {
                    // FRAME: a length hint only.
                    self.le::<8>()?;
                }
                b'.' => {
                    // STOP
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark_d()?;
                }
                b'2' => {
                    self.charge_top()?;
                    let v = self.top()?.clone();
                    let d = self.depths.last().copied().unwrap_or(0);
                    self.push(v, d)?;
                }
                b'N' => self.push(Value::None, 0)?,
                0x88 => self.push(Value::Bool(true), 0)?,
                0x89 => self.push(Value::Bool(false), 0)?,
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push(Value::Int(v.into()), 0)?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v.into()), 0)?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push(Value::Int(v.into()), 0)?;
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    let v = self.long(&b)?;
                    self.push(v, 0)?;
                }
                0x8b => {
                    let n = i32::from_le_bytes(self.le()?);
                    let n = usize::try_from(n).map_err(|_| self.corrupt("negative length"))?;
                    let b = self.take(n)?.to_vec();
                    let v = self.long(&b)?;
                    self.push(v, 0)?;
                }
                b'I' | b'L' => {
                    let l = self.line()?;
                    let t = l.trim_end_matches('L');
                    let v = match t {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => Value::Int(
                            t.parse()
                                .map_err(|_| self.corrupt(format!("bad integer literal `{l}`")))?,
                        ),
                    };
                    self.push(v, 0)?;
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push(Value::Float(v), 0)?;
                }
                b'F' => {
                    let l = self.line()?;
                    let v = l
                        .parse()
                        .map_err(|_| self.corrupt(format!("bad float literal `{l}`")))?;
                    self.push(Value::Float(v), 0)?;
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    self.push_str(n)?;
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    self.push_str(n)?;
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.le()?);
                    let n = self.len_u64(n)?;
                    self.push_str(n)?;
                }
                b'V' => {
                    let l = self.line()?;
                    self.push(Value::Str(l), 0)?;
                }
                b'T' => {
                    let n = i32::from_le_bytes(self.le()?);
                    let n = usize::try_from(n).map_err(|_| self.corrupt("negative length"))?;
                    self.push_bytes(n)?;
                }
                b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    self.push_bytes(n)?;
                }
                b'B' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    self.push_bytes(n)?;
                }
                0x8e | 0x96 => {
                    let n = u64::from_le_bytes(self.le()?);
                    let n = self.len_u64(n)?;
                    self.push_bytes(n)?;
                }
                b'S' => {
                    // Protocol-0 quoted string: keep the text between the quotes.
                    let l = self.line()?;
                    let t = l.trim();
                    let t = t
                        .strip_prefix(['\'', '"'])
                        .and_then(|t| t.strip_suffix(['\'', '"']))
                        .ok_or_else(|| self.corrupt("bad STRING literal"))?;
                    self.push(Value::Bytes(t.as_bytes().to_vec()), 0)?;
                }
                b'}' => self.push(Value::Dict(Vec::new()), 1)?,
                b']' => self.push(Value::List(Vec::new()), 1)?,
                b')' => self.push(Value::Tuple(Vec::new()), 1)?,
                b'd' => {
                    let (items, depth) = self.pop_mark_d()?;
                    let d = self.pairs(items)?;
                    self.push(Value::Dict(d), depth + 1)?;
                }
                b'l' => {
                    let (items, depth) = self.pop_mark_d()?;
                    self.push(Value::List(items), depth + 1)?;
                }
                b't' => {
                    let (items, depth) = self.pop_mark_d()?;
                    self.push(Value::Tuple(items), depth + 1)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    let mut depth = 0;
                    for _ in 0..n {
                        let (v, d) = self.pop_d()?;
                        items.push(v);
                        depth = depth.max(d);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items), depth + 1)?;
                }
                b'a' => {
                    let (v, depth) = self.pop_d()?;
                    match self.top()? {
                        Value::List(l) => l.push(v),
                        other => {
                            let k = other.kind();
                            return Err(self.corrupt(format!("APPEND to a {k}")));
                        }
                    }
                    self.deepen_top(depth)?;
                }
                b'e' => {
                    let (items, depth) = self.pop_mark_d()?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        other => {
                            let k = other.kind();
                            return Err(self.corrupt(format!("APPENDS to a {k}")));
                        }
                    }
                    self.deepen_top(depth)?;
                }
                b's' => {
                    let (v, dv) = self.pop_d()?;
                    let (k, dk) = self.pop_d()?;
                    match self.top()? {
                        Value::Dict(d) => d.push((k, v)),
                        other => {
                            let k = other.kind();
                            return Err(self.corrupt(format!("SETITEM on a {k}")));
                        }
                    }
                    self.deepen_top(dv.max(dk))?;
                }
                b'u' => {
                    let (items, depth) = self.pop_mark_d()?;
                    let pairs = self.pairs(items)?;
                    match self.top()? {
                        Value::Dict(d) => d.extend(pairs),
                        other => {
                            let k = other.kind();
                            return Err(self.corrupt(format!("SETITEMS on a {k}")));
                        }
                    }
                    self.deepen_top(depth)?;
                }
                b'p' => {
                    let l = self.line()?;
                    let i = l
                        .parse()
                        .map_err(|_| self.corrupt(format!("bad memo key `{l}`")))?;
                    self.memo_put(i)?;
                }
                b'q' => {
                    let i = self.u8()?;
                    self.memo_put(i.into())?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.memo_put(i.into())?;
                }
                0x94 => {
                    let i = self.memo.len() as u64;
                    self.memo_put(i)?;
                }
                b'g' => {
                    let l = self.line()?;
                    let i = l
                        .parse()
                        .map_err(|_| self.corrupt(format!("bad memo key `{l}`")))?;
                    self.memo_get(i)?;
                }
                b'h' => {
                    let i = self.u8()?;
                    self.memo_get(i.into())?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.memo_get(i.into())?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(&module, &name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.global(&m, &n)?,
                        _ => return Err(self.corrupt("STACK_GLOBAL needs two strings")),
                    }
                }
                b'R' => {
                    let (args, depth) = self.pop_d()?;
                    let func = self.pop()?;
                    let v = self.reduce(func, args)?;
                    self.push(v, depth + 1)?;
                }
                b'b' => {
                    let (state, ds) = self.pop_d()?;
                    let (obj, dobj) = self.pop_d()?;
                    let v = self.build(obj, state)?;
                    self.push(v, ds.max(dobj) + 1)?;
                }
                b'Q' => {
                    let (pid, depth) = self.pop_d()?;
                    let v = (self.persistent)(pid)?;
                    self.push(v, depth + 1)?;
                }
                b'P' => {
                    let l = self.line()?;
                    let v = (self.persistent)(Value::Str(l))?;
                    self.push(v, 1)?;
                }
                0x81 | 0x92 | b'i' | b'o' => {
                    return Err(self.unsupported(format!(
                        "opcode {op:#04x} (object construction) is refused: it would execute code"
                    )));
                }
                0x82..=0x84 => {
                    return Err(
                        self.unsupported("extension-registry opcodes (EXT1/2/4) are refused")
                    );
                }
                other => {
                    return Err(self.unsupported(format!("opcode {other:#04x}")));
                }
            }
        }
    }

    fn pairs(&self, items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
        if !items.len().is_multiple_of(2) {
            return Err(self.corrupt("odd number of items for a dict"));
        }
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        Ok(out)
    }

    fn reduce(&self, func: Value, args: Value) -> Result<Value> {
        let Value::Global(name) = func else {
            return Err(self.unsupported(format!("REDUCE on a {}", func.kind())));
        };
        let Value::Tuple(args) = args else {
            return Err(self.corrupt(format!("arguments of `{name}` are not a tuple")));
        };
        let bad = |why: &str| self.corrupt(format!("`{name}`: {why}"));
        match name.as_str() {
            "collections.OrderedDict" => match args.as_slice() {
                [] => Ok(Value::Dict(Vec::new())),
                [Value::List(items)] => {
                    let mut d = Vec::new();
                    for it in items {
                        match it.as_seq() {
                            Some([k, v]) => d.push((k.clone(), v.clone())),
                            _ => return Err(bad("items are not pairs")),
                        }
                    }
                    Ok(Value::Dict(d))
                }
                _ => Err(bad("unexpected arguments")),
            },
            "torch._utils._rebuild_tensor_v2" => {
                let [storage, offset, size, stride, ..] = args.as_slice() else {
                    return Err(bad("needs (storage, offset, size, stride, …)"));
                };
                let Value::Storage(storage) = storage else {
                    return Err(bad("first argument is not a storage"));
                };
                let offset = offset.as_usize().ok_or_else(|| bad("bad storage offset"))?;
                let dims = |v: &Value| -> Option<Vec<usize>> {
                    v.as_seq()?.iter().map(Value::as_usize).collect()
                };
                let size = dims(size).ok_or_else(|| bad("bad size"))?;
                let stride = dims(stride).ok_or_else(|| bad("bad stride"))?;
                if size.len() != stride.len() {
                    return Err(bad("size and stride differ in rank"));
                }
                Ok(Value::TorchTensor(TorchTensorRef {
                    storage: storage.clone(),
                    offset,
                    size,
                    stride,
                }))
            }
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                match args.first() {
                    Some(t @ Value::TorchTensor(_)) => Ok(t.clone()),
                    _ => Err(bad("first argument is not a tensor")),
                }
            }
            "numpy.core.multiarray._reconstruct" | "numpy._core.multiarray._reconstruct" => {
                match args.first() {
                    Some(Value::Global(g)) if g == "numpy.ndarray" => Ok(Value::EmptyNdArray),
                    _ => {
                        Err(self
                            .unsupported(format!("`{name}` of something other than numpy.ndarray")))
                    }
                }
            }
            "numpy.dtype" => match args.first() {
                Some(Value::Str(code)) => Ok(Value::Dtype(NumpyDtype {
                    code: code.clone(),
                    byteorder: '=',
                })),
                _ => Err(bad("first argument is not a type code")),
            },
            "numpy.core.multiarray.scalar" | "numpy._core.multiarray.scalar" => {
                let [Value::Dtype(dt), raw] = args.as_slice() else {
                    return Err(bad("needs (dtype, bytes)"));
                };
                let raw = match raw {
                    Value::Bytes(b) => b.clone(),
                    // Protocol 0/2 writes the bytes as a latin-1 str.
                    Value::Str(s) => s.chars().map(|c| c as u32 as u8).collect(),
                    _ => return Err(bad("value is not bytes")),
                };
                let t = self.array(dt, Vec::new(), &raw, &name)?;
                Ok(Value::NdArray(Rc::new(t)))
            }
            "builtins.tuple" | "__builtin__.tuple" | "builtins.list" | "__builtin__.list" => {
                let items = match args.as_slice() {
                    [] => Vec::new(),
                    [v] => v
                        .as_seq()
                        .ok_or_else(|| bad("argument is not a sequence"))?
                        .to_vec(),
                    _ => return Err(bad("takes one argument")),
                };
                Ok(if name.ends_with("tuple") {
                    Value::Tuple(items)
                } else {
                    Value::List(items)
                })
            }
            other => Err(self.unsupported(format!(
                "refusing to call `{other}`: only tensors, arrays and plain containers are read"
            ))),
        }
    }

    fn array(
        &self,
        dt: &NumpyDtype,
        shape: Vec<usize>,
        raw: &[u8],
        what: &str,
    ) -> Result<HostTensor> {
        let code = dt.code.trim_start_matches(['<', '>', '|', '=']);
        let et = ElemType::from_numpy(code)
            .ok_or_else(|| self.unsupported(format!("NumPy dtype `{}` in `{what}`", dt.code)))?;
        let big = dt.byteorder == '>' || dt.code.starts_with('>');
        let n = crate::host::checked_volume(&shape)
            .ok_or_else(|| self.corrupt(format!("`{what}`: shape {shape:?} overflows")))?;
        if n.checked_mul(et.size()) != Some(raw.len()) {
            return Err(self.corrupt(format!(
                "`{what}`: shape {shape:?} of {} needs {} bytes, got {}",
                dt.code,
                n.saturating_mul(et.size()),
                raw.len()
            )));
        }
        let data = et.decode(raw, big).map_err(|e| self.corrupt(e))?;
        HostTensor::new(shape, data, what)
    }

    fn build(&self, obj: Value, state: Value) -> Result<Value> {
        match obj {
            // OrderedDict attributes (PyTorch's `_metadata`): not needed.
            Value::Dict(d) => Ok(Value::Dict(d)),
            Value::Dtype(mut dt) => {
                if let Some(Value::Str(order)) = state.as_seq().and_then(|s| s.get(1)) {
                    dt.byteorder = order.chars().next().unwrap_or('=');
                }
                Ok(Value::Dtype(dt))
            }
            Value::EmptyNdArray => {
                // (version, shape, dtype, is_fortran, raw data)
                let s = state
                    .as_seq()
                    .ok_or_else(|| self.corrupt("ndarray state is not a tuple"))?;
                let [_, shape, Value::Dtype(dt), Value::Bool(fortran), raw] = s else {
                    return Err(self.corrupt(
                        "ndarray state is not (version, shape, dtype, is_fortran, data)",
                    ));
                };
                let shape: Vec<usize> = shape
                    .as_seq()
                    .and_then(|s| s.iter().map(Value::as_usize).collect())
                    .ok_or_else(|| self.corrupt("ndarray shape is not a tuple of ints"))?;
                let raw = match raw {
                    Value::Bytes(b) => b.clone(),
                    Value::Str(s) => s.chars().map(|c| c as u32 as u8).collect(),
                    other => {
                        return Err(self.unsupported(format!(
                            "ndarray data as a {} (object arrays are refused)",
                            other.kind()
                        )));
                    }
                };
                let mut t = self.array(dt, shape.clone(), &raw, "numpy.ndarray")?;
                if *fortran && shape.len() > 1 {
                    t = fortran_to_c(t);
                }
                Ok(Value::NdArray(Rc::new(t)))
            }
            other => Err(self.unsupported(format!(
                "BUILD on a {} is refused: only dicts, dtypes and arrays are rebuilt",
                other.kind()
            ))),
        }
    }
}

/// Reorders column-major values into row-major order.
fn fortran_to_c(t: HostTensor) -> HostTensor {
    let shape = t.shape.clone();
    let rank = shape.len();
    // Column-major strides.
    let mut strides = vec![1usize; rank];
    for d in 1..rank {
        strides[d] = strides[d - 1] * shape[d - 1];
    }
    let order = crate::host::strided_indices(&shape, &strides, 0);
    HostTensor {
        shape,
        data: t.data.gather(&order),
    }
}
