//! COCO segmentation masks, decoded exactly as pycocotools does: polygons are
//! rasterised with `rleFrPoly` (boundary points on a 5× grid, then a column
//! scan), run-length counts are column-major, and compressed counts use
//! COCO's 6-bit LEB128-like string code with deltas from the third count on.

/// Run-length counts of a `height × width` mask in column-major order,
/// starting with a run of zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rle {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Alternating run lengths (0s, 1s, 0s, …), summing to `height * width`.
    pub counts: Vec<u64>,
}

impl Rle {
    /// Decodes COCO's compressed `counts` string (pycocotools `rleFrString`).
    /// Returns an error text for a character outside `'0'..='o'`, a run that
    /// comes out negative, or a string that ends inside a number.
    pub fn from_compressed(s: &str, height: usize, width: usize) -> Result<Rle, String> {
        let bytes = s.as_bytes();
        let mut counts: Vec<u64> = Vec::new();
        let mut p = 0;
        while p < bytes.len() {
            let mut x: i64 = 0;
            let mut k = 0u32;
            loop {
                let Some(&b) = bytes.get(p) else {
                    return Err(format!("counts string ends inside a number at byte {p}"));
                };
                if !(48..48 + 64).contains(&b) {
                    return Err(format!(
                        "byte {p} of the counts string ({:?}) is outside '0'..='o'",
                        b as char
                    ));
                }
                // 12 characters of 5 bits: 60 bits, so the sign extension
                // below shifts by at most 60 (13 would shift past 64 bits).
                if k >= 12 {
                    return Err(format!("number at byte {p} is too long"));
                }
                let c = i64::from(b - 48);
                x |= (c & 0x1f) << (5 * k);
                let more = c & 0x20 != 0;
                p += 1;
                k += 1;
                if !more {
                    if c & 0x10 != 0 {
                        x |= -1i64 << (5 * k);
                    }
                    break;
                }
            }
            if counts.len() > 2 {
                x = i64::try_from(counts[counts.len() - 2])
                    .ok()
                    .and_then(|prev| x.checked_add(prev))
                    .ok_or_else(|| format!("run {} overflows", counts.len()))?;
            }
            if x < 0 {
                return Err(format!(
                    "run {} decodes to a negative length {x}",
                    counts.len()
                ));
            }
            counts.push(x as u64);
        }
        Ok(Rle {
            height,
            width,
            counts,
        })
    }

    /// The outline of polygon `xy = [x0, y0, x1, y1, …]` (pixel coordinates)
    /// as run-length counts (pycocotools `rleFrPoly`).
    pub fn from_polygon(xy: &[f64], height: usize, width: usize) -> Rle {
        let scale = 5.0f64;
        let k = xy.len() / 2;
        let h = height as i64;
        let w = width as i64;
        // Vertices on the 5× grid, closed.
        let mut x: Vec<i64> = (0..k)
            .map(|j| (scale * xy[2 * j] + 0.5) as i32 as i64)
            .collect();
        let mut y: Vec<i64> = (0..k)
            .map(|j| (scale * xy[2 * j + 1] + 0.5) as i32 as i64)
            .collect();
        if k > 0 {
            x.push(x[0]);
            y.push(y[0]);
        }
        // Dense boundary points along every edge.
        let mut u: Vec<i64> = Vec::new();
        let mut v: Vec<i64> = Vec::new();
        for j in 0..k {
            let (mut xs, mut xe, mut ys, mut ye) = (x[j], x[j + 1], y[j], y[j + 1]);
            let dx = (xe - xs).abs();
            let dy = (ys - ye).abs();
            let flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if flip {
                std::mem::swap(&mut xs, &mut xe);
                std::mem::swap(&mut ys, &mut ye);
            }
            if dx >= dy {
                let s = if dx == 0 {
                    0.0
                } else {
                    (ye - ys) as f64 / dx as f64
                };
                for d in 0..=dx {
                    let t = if flip { dx - d } else { d };
                    u.push(t + xs);
                    v.push((ys as f64 + s * t as f64 + 0.5) as i32 as i64);
                }
            } else {
                let s = (xe - xs) as f64 / dy as f64;
                for d in 0..=dy {
                    let t = if flip { dy - d } else { d };
                    v.push(t + ys);
                    u.push((xs as f64 + s * t as f64 + 0.5) as i32 as i64);
                }
            }
        }
        // Points where the boundary crosses a pixel column centre, back on the pixel grid.
        let mut a: Vec<i64> = Vec::new();
        for j in 1..u.len() {
            if u[j] == u[j - 1] {
                continue;
            }
            let xd = (if u[j] < u[j - 1] { u[j] } else { u[j] - 1 }) as f64;
            let xd = (xd + 0.5) / scale - 0.5;
            if xd.floor() != xd || xd < 0.0 || xd > (w - 1) as f64 {
                continue;
            }
            let yd = (if v[j] < v[j - 1] { v[j] } else { v[j - 1] }) as f64;
            let yd = ((yd + 0.5) / scale - 0.5).clamp(0.0, h as f64).ceil();
            a.push(xd as i64 * h + yd as i64);
        }
        a.push(h * w);
        a.sort_unstable();
        let mut prev = 0;
        for t in a.iter_mut() {
            let cur = *t;
            *t -= prev;
            prev = cur;
        }
        // Zero-length runs merge their neighbours.
        let mut counts: Vec<u64> = Vec::with_capacity(a.len());
        let mut j = 0;
        counts.push(a[j] as u64);
        j += 1;
        while j < a.len() {
            if a[j] > 0 {
                counts.push(a[j] as u64);
                j += 1;
            } else {
                j += 1;
                if j < a.len() {
                    if let Some(last) = counts.last_mut() {
                        *last += a[j] as u64;
                    }
                    j += 1;
                }
            }
        }
        Rle {
            height,
            width,
            counts,
        }
    }

    /// The mask as row-major 0/1 bytes; an error text when the counts do not
    /// sum to `height * width`.
    pub fn decode(&self) -> Result<Vec<u8>, String> {
        let total = self
            .counts
            .iter()
            .try_fold(0u64, |a, &c| a.checked_add(c))
            .ok_or_else(|| "run lengths overflow".to_string())?;
        let n = self
            .height
            .checked_mul(self.width)
            .ok_or_else(|| format!("mask {}×{} is too large", self.height, self.width))?;
        if total != n as u64 {
            return Err(format!(
                "run lengths sum to {total}, not {}×{} = {n}",
                self.height, self.width
            ));
        }
        let mut out = vec![0u8; n];
        let mut p = 0usize;
        let mut value = 0u8;
        for &c in &self.counts {
            if value == 1 {
                for q in p..p + c as usize {
                    // column-major index q → (x = q / h, y = q % h)
                    out[(q % self.height) * self.width + q / self.height] = 1;
                }
            }
            p += c as usize;
            value ^= 1;
        }
        Ok(out)
    }
}
