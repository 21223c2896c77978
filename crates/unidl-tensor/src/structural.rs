//! Indexing, slicing, permute, reshape and the joining/splitting ops
//! (A.1.2.2–A.1.2.4, T-d/e/f, §6.1.1-c). All work on every dtype, strings included.

use std::sync::Arc;

use burn::tensor::{Int, TensorData};

use crate::error::{Result, TensorError};
use crate::shape::{
    MAX_RANK, check_perm, host_gather, host_permute, infer_reshape, norm_dim, offset, pad,
};
use crate::tensor::{Storage, Tensor, map_raw};

/// One item of an index expression, like one comma-separated part of `t[…]` in Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idx {
    /// A single position (negative counts from the end); removes the axis.
    At(isize),
    /// `start:stop:step` (Python semantics; `None` = the default end; step ≠ 0, may be negative).
    Slice {
        /// First index.
        start: Option<isize>,
        /// One past the last index.
        stop: Option<isize>,
        /// Stride.
        step: isize,
    },
    /// `:` — the whole axis.
    Full,
    /// `None`/`newaxis` — inserts an axis of size 1.
    NewAxis,
    /// `...` — as many full axes as needed.
    Ellipsis,
}

impl Idx {
    /// `start..stop` with step 1.
    pub fn range(start: isize, stop: isize) -> Idx {
        Idx::Slice {
            start: Some(start),
            stop: Some(stop),
            step: 1,
        }
    }
}

/// Python's slice semantics: the indices `start:stop:step` selects on an axis of size `n`.
fn slice_indices(
    start: Option<isize>,
    stop: Option<isize>,
    step: isize,
    n: usize,
) -> Result<Vec<usize>> {
    if step == 0 {
        return Err(TensorError::invalid("index", "slice step cannot be zero"));
    }
    let n = n as isize;
    let norm = |x: isize| if x < 0 { x + n } else { x };
    let mut out = Vec::new();
    if step > 0 {
        let s = start.map(norm).unwrap_or(0).clamp(0, n);
        let e = stop.map(norm).unwrap_or(n).clamp(0, n);
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i += step;
        }
    } else {
        let s = start.map(norm).unwrap_or(n - 1).clamp(-1, n - 1);
        let e = stop.map(norm).unwrap_or(-1).clamp(-1, n - 1);
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i += step;
        }
    }
    Ok(out)
}

impl Tensor {
    /// `t[items…]` (A.1.2.2): integers (negative allowed), slices with steps
    /// (negative allowed), full axes, new axes and one ellipsis. The result is a
    /// tensor (T-e). An integer out of range is [`TensorError::IndexOutOfRange`].
    pub fn index(&self, items: &[Idx]) -> Result<Tensor> {
        let consuming = items
            .iter()
            .filter(|i| !matches!(i, Idx::NewAxis | Idx::Ellipsis))
            .count();
        if items.iter().filter(|i| matches!(i, Idx::Ellipsis)).count() > 1 {
            return Err(TensorError::invalid("index", "at most one ellipsis"));
        }
        if consuming > self.rank() {
            return Err(TensorError::invalid(
                "index",
                format!(
                    "{consuming} indices for a tensor of rank {} (shape {:?})",
                    self.rank(),
                    self.shape
                ),
            ));
        }
        // Expand the ellipsis (or append trailing full axes).
        let mut expanded = Vec::new();
        let fill = self.rank() - consuming;
        let mut filled = false;
        for it in items {
            if *it == Idx::Ellipsis {
                expanded.extend(std::iter::repeat_n(Idx::Full, fill));
                filled = true;
            } else {
                expanded.push(*it);
            }
        }
        if !filled {
            expanded.extend(std::iter::repeat_n(Idx::Full, fill));
        }
        // Per input axis: the picked indices and whether the axis is kept.
        let mut picks: Vec<Vec<usize>> = Vec::with_capacity(self.rank());
        let mut out_shape = Vec::new();
        let mut axis = 0;
        for it in expanded {
            match it {
                Idx::NewAxis => out_shape.push(1),
                Idx::At(i) => {
                    let n = self.shape[axis];
                    let j = if i < 0 { i + n as isize } else { i };
                    if j < 0 || j >= n as isize {
                        return Err(TensorError::IndexOutOfRange {
                            axis,
                            index: i,
                            size: n,
                        });
                    }
                    picks.push(vec![j as usize]);
                    axis += 1;
                }
                Idx::Full => {
                    picks.push((0..self.shape[axis]).collect());
                    out_shape.push(self.shape[axis]);
                    axis += 1;
                }
                Idx::Slice { start, stop, step } => {
                    let p = slice_indices(start, stop, step, self.shape[axis])?;
                    out_shape.push(p.len());
                    picks.push(p);
                    axis += 1;
                }
                Idx::Ellipsis => unreachable!(),
            }
        }
        if out_shape.len() > MAX_RANK {
            return Err(TensorError::RankTooLarge {
                rank: out_shape.len(),
                max: MAX_RANK,
            });
        }
        let picked = self.gather_axes(&picks)?;
        Tensor::from_storage(out_shape, picked.storage)
    }

    /// Takes `picks[a]` along every axis `a`; the result keeps the rank.
    pub(crate) fn gather_axes(&self, picks: &[Vec<usize>]) -> Result<Tensor> {
        let shape: Vec<usize> = picks.iter().map(Vec::len).collect();
        if shape.contains(&0) {
            return Err(TensorError::invalid(
                "index",
                format!(
                    "the result of shape {shape:?} would be empty; unidl tensors on a device have no zero-size axes"
                ),
            ));
        }
        let off = offset(self.rank());
        let device = self.device();
        let storage = map_raw!(self.storage.clone(), |t| {
            let mut t = t;
            for (a, p) in picks.iter().enumerate() {
                let n = self.shape[a];
                let contiguous = p.windows(2).all(|w| w[1] == w[0] + 1);
                if p.len() == n && contiguous {
                    continue;
                }
                t = if contiguous {
                    t.slice_dim(off + a, p[0]..p[0] + p.len())
                } else {
                    let idx: Vec<i64> = p.iter().map(|&x| x as i64).collect();
                    let idx = burn::tensor::Tensor::<1, Int>::from_data(
                        TensorData::new(idx, [p.len()]),
                        (&device, burn::tensor::DType::I64),
                    );
                    t.select(off + a, idx)
                };
            }
            t
        }, Storage::Str(v, d) => Storage::Str(Arc::new(host_gather(&v, &self.shape, picks)), d));
        Ok(Tensor::new(shape, storage))
    }

    /// `t.narrow(dim, start, len)`: `len` consecutive entries along `dim`.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = norm_dim("narrow", dim, self.rank(), false)?;
        if start + len > self.shape[d] {
            return Err(TensorError::IndexOutOfRange {
                axis: d,
                index: (start + len) as isize - 1,
                size: self.shape[d],
            });
        }
        let picks: Vec<Vec<usize>> = (0..self.rank())
            .map(|a| {
                if a == d {
                    (start..start + len).collect()
                } else {
                    (0..self.shape[a]).collect()
                }
            })
            .collect();
        self.gather_axes(&picks)
    }

    /// `permute(t, dims)` (A.1.2.3): reorders the axes.
    pub fn permute(&self, dims: &[isize]) -> Result<Tensor> {
        let perm = check_perm(dims, self.rank())?;
        let off = offset(self.rank());
        let mut full = [0usize; MAX_RANK];
        for (i, f) in full.iter_mut().enumerate() {
            *f = if i < off { i } else { off + perm[i - off] };
        }
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        let storage = map_raw!(self.storage.clone(), |t| t.permute(full),
            Storage::Str(v, d) => Storage::Str(Arc::new(host_permute(&v, &self.shape, &perm)), d));
        Ok(Tensor::new(shape, storage))
    }

    /// Swaps two axes.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let a = norm_dim("transpose", d0, self.rank(), false)?;
        let b = norm_dim("transpose", d1, self.rank(), false)?;
        let mut perm: Vec<isize> = (0..self.rank() as isize).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// `reshape(t, shape)` (A.1.2.4): same elements, new shape; one `-1` is inferred.
    /// A volume mismatch is [`TensorError::ReshapeVolume`] naming both shapes.
    pub fn reshape(&self, shape: &[isize]) -> Result<Tensor> {
        let to = infer_reshape(&self.shape, shape)?;
        self.reshape_exact(to)
    }

    fn reshape_exact(&self, to: Vec<usize>) -> Result<Tensor> {
        match &self.storage {
            Storage::Str(..) => {
                pad(&to)?;
                Ok(Tensor::new(to, self.storage.clone()))
            }
            _ => Tensor::from_storage(to, self.storage.clone()),
        }
    }

    /// Removes `dim` if it has size 1 (error otherwise), or every size-1 axis when `None`.
    pub fn squeeze(&self, dim: Option<isize>) -> Result<Tensor> {
        let to: Vec<usize> = match dim {
            None => self.shape.iter().copied().filter(|&s| s != 1).collect(),
            Some(d) => {
                let d = norm_dim("squeeze", d, self.rank(), false)?;
                if self.shape[d] != 1 {
                    return Err(TensorError::invalid(
                        "squeeze",
                        format!(
                            "axis {d} of shape {:?} has size {}, not 1",
                            self.shape, self.shape[d]
                        ),
                    ));
                }
                let mut s = self.shape.clone();
                s.remove(d);
                s
            }
        };
        self.reshape_exact(to)
    }

    /// Inserts an axis of size 1 at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let d = norm_dim("unsqueeze", dim, self.rank(), true)?;
        let mut s = self.shape.clone();
        s.insert(d, 1);
        self.reshape_exact(s)
    }

    /// Merges axes `start ..= end` into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape_exact(vec![1]);
        }
        let a = norm_dim("flatten", start, self.rank(), false)?;
        let b = norm_dim("flatten", end, self.rank(), false)?;
        if a > b {
            return Err(TensorError::invalid(
                "flatten",
                format!("start axis {a} is after end axis {b}"),
            ));
        }
        let mut s = self.shape[..a].to_vec();
        s.push(self.shape[a..=b].iter().product());
        s.extend_from_slice(&self.shape[b + 1..]);
        self.reshape_exact(s)
    }

    /// Joins tensors along an existing axis. Dtypes must match; shapes must match
    /// except along `dim` (the error names both shapes).
    pub fn concat(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::invalid("concat", "no tensors given"))?;
        let d = norm_dim("concat", dim, first.rank(), false)?;
        if first.rank() == 0 {
            return Err(TensorError::invalid(
                "concat",
                "cannot concatenate scalars; use stack",
            ));
        }
        for t in &tensors[1..] {
            let same = t.rank() == first.rank()
                && t.shape
                    .iter()
                    .zip(&first.shape)
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !same {
                return Err(TensorError::ShapeMismatch {
                    op: "concat".into(),
                    lhs: first.shape.clone(),
                    rhs: t.shape.clone(),
                    detail: format!(" (all axes but {d} must match)"),
                });
            }
            if t.dtype() != first.dtype() {
                return Err(TensorError::invalid(
                    "concat",
                    format!("dtypes differ: {} and {}", first.dtype(), t.dtype()),
                ));
            }
        }
        let mut shape = first.shape.clone();
        shape[d] = tensors.iter().map(|t| t.shape[d]).sum();
        let off = offset(first.rank());
        macro_rules! cat_kind {
            ($variant:ident) => {{
                let parts: Vec<_> = tensors
                    .iter()
                    .map(|t| match &t.storage {
                        Storage::$variant(x) => x.clone(),
                        _ => unreachable!("dtype checked"),
                    })
                    .collect();
                Storage::$variant(burn::tensor::Tensor::cat(parts, off + d))
            }};
        }
        let storage = match &first.storage {
            Storage::Float(_) => cat_kind!(Float),
            Storage::Int(_) => cat_kind!(Int),
            Storage::Bool(_) => cat_kind!(Bool),
            Storage::Complex(..) => {
                let (re, im): (Vec<_>, Vec<_>) = tensors
                    .iter()
                    .map(|t| match &t.storage {
                        Storage::Complex(a, b) => (a.clone(), b.clone()),
                        _ => unreachable!("dtype checked"),
                    })
                    .unzip();
                Storage::Complex(
                    burn::tensor::Tensor::cat(re, off + d),
                    burn::tensor::Tensor::cat(im, off + d),
                )
            }
            Storage::Str(_, dev) => {
                let outer: usize = first.shape[..d].iter().product();
                let mut out = Vec::with_capacity(crate::shape::volume(&shape));
                for o in 0..outer {
                    for t in tensors {
                        let Storage::Str(v, _) = &t.storage else {
                            unreachable!("dtype checked")
                        };
                        let inner: usize = t.shape[d..].iter().product();
                        out.extend_from_slice(&v[o * inner..(o + 1) * inner]);
                    }
                }
                Storage::Str(Arc::new(out), dev.clone())
            }
        };
        Ok(Tensor::new(shape, storage))
    }

    /// Joins tensors of equal shape along a new axis `dim`.
    pub fn stack(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::invalid("stack", "no tensors given"))?;
        for t in &tensors[1..] {
            if t.shape != first.shape {
                return Err(TensorError::ShapeMismatch {
                    op: "stack".into(),
                    lhs: first.shape.clone(),
                    rhs: t.shape.clone(),
                    detail: " (stacked tensors need equal shapes)".into(),
                });
            }
        }
        let d = norm_dim("stack", dim, first.rank(), true)? as isize;
        let parts = tensors
            .iter()
            .map(|t| t.unsqueeze(d))
            .collect::<Result<Vec<_>>>()?;
        Tensor::concat(&parts, d)
    }

    /// Splits into pieces of `size` along `dim` (the last may be smaller).
    pub fn split(&self, size: usize, dim: isize) -> Result<Vec<Tensor>> {
        if size == 0 {
            return Err(TensorError::invalid("split", "split size must be positive"));
        }
        let d = norm_dim("split", dim, self.rank(), false)?;
        let n = self.shape[d];
        let sizes: Vec<usize> = (0..n).step_by(size).map(|s| size.min(n - s)).collect();
        self.split_sizes(&sizes, dim)
    }

    /// Splits into pieces of the given sizes along `dim`; they must add up to the axis size.
    pub fn split_sizes(&self, sizes: &[usize], dim: isize) -> Result<Vec<Tensor>> {
        let d = norm_dim("split", dim, self.rank(), false)?;
        let total: usize = sizes.iter().sum();
        if total != self.shape[d] || sizes.contains(&0) {
            return Err(TensorError::invalid(
                "split",
                format!(
                    "sizes {sizes:?} (sum {total}) do not partition axis {d} of size {}",
                    self.shape[d]
                ),
            ));
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&s| {
                let t = self.narrow(d as isize, start, s);
                start += s;
                t
            })
            .collect()
    }

    /// Splits into `chunks` nearly equal pieces along `dim` (PyTorch's `chunk`).
    pub fn chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Tensor>> {
        if chunks == 0 {
            return Err(TensorError::invalid(
                "chunk",
                "number of chunks must be positive",
            ));
        }
        let d = norm_dim("chunk", dim, self.rank(), false)?;
        let size = self.shape[d].div_ceil(chunks).max(1);
        self.split(size, d as isize)
    }
}

#[cfg(test)]
mod tests {
    use super::slice_indices;

    #[test]
    fn python_slices() {
        assert_eq!(slice_indices(None, None, 2, 5).unwrap(), vec![0, 2, 4]);
        assert_eq!(slice_indices(None, None, -1, 4).unwrap(), vec![3, 2, 1, 0]);
        assert_eq!(slice_indices(Some(-2), None, 1, 5).unwrap(), vec![3, 4]);
        assert_eq!(
            slice_indices(Some(1), Some(100), 3, 8).unwrap(),
            vec![1, 4, 7]
        );
        assert_eq!(slice_indices(Some(3), Some(0), -2, 5).unwrap(), vec![3, 1]);
        assert!(slice_indices(None, None, 0, 3).is_err());
    }
}
