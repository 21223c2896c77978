//! The unpickler machine: the opcode loop over one byte string, its stack,
//! marks and memo.

use std::path::Path;

use super::limits::weight;
use super::whitelist::allowed_global;
use super::{MAX_DEPTH, Value};
use crate::error::{InteropError, Result};

const MARK_ERR: &str = "stack underflow (no MARK)";

/// The unpickler's state over one byte string.
pub(super) struct Machine<'a, F> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    pub(super) path: &'a Path,
    pub(super) stack: Vec<Value>,
    /// Nesting depth of each stack entry (0 for scalars, 1 for an empty
    /// container; an upper bound for values built by `REDUCE`/`BUILD`).
    pub(super) depths: Vec<usize>,
    pub(super) marks: Vec<usize>,
    pub(super) memo: std::collections::HashMap<u64, (Value, usize)>,
    /// Nodes copied so far by `DUP`, `PUT` and `GET`, and the most allowed.
    pub(super) copied: usize,
    pub(super) copy_budget: usize,
    pub(super) persistent: F,
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

impl<F> Machine<'_, F>
where
    F: FnMut(Value) -> Result<Value>,
{
    pub(super) fn corrupt(&self, reason: impl Into<String>) -> InteropError {
        InteropError::Corrupt {
            path: self.path.to_path_buf(),
            reason: format!("pickle at byte {}: {}", self.pos, reason.into()),
        }
    }

    pub(super) fn unsupported(&self, reason: impl Into<String>) -> InteropError {
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
}
