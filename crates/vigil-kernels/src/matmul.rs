//! `y = x Wᵀ` for a block-quantised `W` `[out, in]` and f32 activations `x` `[rows, in]`.
//!
//! 1. The activation rows are quantised once ([`QuantizedActs`]).
//! 2. The output features are cut into tiles of 8 weight rows; the tiles are split into
//!    contiguous ranges, eight per thread, handed out one parallel section per matmul
//!    ([`crate::team::for_each_index`]; none at all for small products or one thread).
//!    Threads claim ranges as they come, so one that joins late takes fewer.
//! 3. Inside a tile, activation rows are taken 16 at a time; each weight block of the
//!    8 rows is unpacked once per 16 activation rows (the prefill win), and every
//!    weight tile stays in L1 while all activation rows stream past it.
//!
//! [`matmul_group`] runs several matrices that read the same input (a layer's q, k and v
//! projections; gate and up) as one product: the input is quantised once per activation
//! format, and all their tiles share one parallel section.
//!
//! Results do not depend on the thread count or on how the work is tiled: every output is
//! the same per-row dot product (bit-identical across paths). For Q4_K and Q6_K that dot
//! product's f32 order depends, as in llama.cpp, on the number of activation rows (Q6_K)
//! or on the row's place among them (Q4_K); see those modules.

use crate::act::QuantizedActs;
use crate::block32::MAX_TILE_ROWS;
use crate::cpu::Isa;
use crate::format::{Error, QuantMatrix, QuantType};
use std::mem::MaybeUninit;

/// A weight format's tile kernel: `out[ai][i] = w[i] · acts.row(a0 + ai)` for the 8
/// weight rows `w` and activation rows `a0..a1` (at most 16).
pub(crate) trait Kernel {
    #[allow(dead_code)]
    const QTYPE: QuantType;
    fn tile(
        isa: Isa,
        w: &[&[u8]; 8],
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    );
}

/// Below this many multiply-adds a matmul runs on the calling thread (a hand-off to the
/// pool costs a few microseconds).
const PAR_MIN_MACS: usize = 1 << 17;

/// A monomorphised [`Kernel::tile`].
type TileFn = fn(Isa, &[&[u8]; 8], &QuantizedActs, usize, usize, &mut [[f32; 8]]);

/// The tile kernel of a weight format.
fn tile_fn(qtype: QuantType) -> TileFn {
    match qtype {
        QuantType::Q4_0 => <crate::q4_0::Q4_0 as Kernel>::tile,
        QuantType::Q4_1 => <crate::q4_1::Q4_1 as Kernel>::tile,
        QuantType::Q5_0 => <crate::q5_0::Q5_0 as Kernel>::tile,
        QuantType::Q8_0 => <crate::q8_0::Q8_0 as Kernel>::tile,
        QuantType::Q4K => <crate::q4_k::Q4K as Kernel>::tile,
        QuantType::Q6K => <crate::q6_k::Q6K as Kernel>::tile,
    }
}

/// `y = x Wᵀ` with the best instruction set: `x` is `[rows, w.cols()]`, `y` is
/// `[rows, w.rows()]`, both row-major.
pub fn matmul(w: &QuantMatrix, x: &[f32], rows: usize, y: &mut [f32]) -> Result<(), Error> {
    matmul_with(Isa::detect(), w, x, rows, y)
}

/// [`matmul`] into memory not yet initialised (a fresh vector's spare capacity): every
/// element of `y` is written, so the caller may then take it as initialised. Saves
/// zeroing an output the kernels overwrite anyway (a prefill's largest products are
/// megabytes, zeroed on one thread).
pub fn matmul_uninit(
    w: &QuantMatrix,
    x: &[f32],
    rows: usize,
    y: &mut [MaybeUninit<f32>],
) -> Result<(), Error> {
    matmul_inner(Isa::detect(), w, x, rows, y)
}

/// [`matmul`] with a given instruction set (scalar where the CPU lacks it).
pub fn matmul_with(
    isa: Isa,
    w: &QuantMatrix,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
) -> Result<(), Error> {
    matmul_inner(isa, w, x, rows, as_uninit(y))
}

/// An initialised slice seen as one that may be (over)written with any values.
fn as_uninit(y: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the kernels only ever write
    // initialised f32 values through it, so `y` stays initialised.
    unsafe { &mut *(y as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

fn matmul_inner(
    isa: Isa,
    w: &QuantMatrix,
    x: &[f32],
    rows: usize,
    y: &mut [MaybeUninit<f32>],
) -> Result<(), Error> {
    if x.len() != rows * w.cols() {
        return Err(Error::Shape {
            what: "activations",
            expected: rows * w.cols(),
            actual: x.len(),
        });
    }
    let isa = isa.checked();
    let acts = QuantizedActs::with_isa(isa, w.qtype().act_type(), x, rows, w.cols());
    matmul_quantized_inner(isa, w, &acts, y)
}

/// `y = x Wᵀ` for activations already quantised to `w`'s activation format (reuse one
/// [`QuantizedActs`] for several matrices that read the same input, e.g. q, k and v).
pub fn matmul_quantized(
    isa: Isa,
    w: &QuantMatrix,
    acts: &QuantizedActs,
    y: &mut [f32],
) -> Result<(), Error> {
    matmul_quantized_inner(isa, w, acts, as_uninit(y))
}

fn matmul_quantized_inner(
    isa: Isa,
    w: &QuantMatrix,
    acts: &QuantizedActs,
    y: &mut [MaybeUninit<f32>],
) -> Result<(), Error> {
    let isa = isa.checked();
    let product = Product::new(isa, w, acts, y)?;
    run(isa, &[product]);
    Ok(())
}

/// `ys[i] = x Wᵢᵀ` for matrices that read the same input `x` (`[rows, cols]`, every
/// `Wᵢ` `[outᵢ, cols]`), into memory not yet initialised, as [`matmul_uninit`]:
///
/// * `x` is quantised once per activation format among the `Wᵢ` (q, k and v of a Q4_K_M
///   layer share Q8_K even where v is Q6_K);
/// * all the matrices' tiles are one parallel section, one hand-off to the pool instead
///   of one per matrix, and small products (a grouped-query layer's k and v) no longer
///   leave a thread idle at their end.
///
/// Every output equals what [`matmul`] computes for its matrix alone, bit for bit.
pub fn matmul_group(
    ws: &[&QuantMatrix],
    x: &[f32],
    rows: usize,
    ys: &mut [&mut [MaybeUninit<f32>]],
) -> Result<(), Error> {
    matmul_group_with(Isa::detect(), ws, x, rows, ys)
}

/// [`matmul_group`] into buffers that are already initialised (ones a caller keeps
/// from step to step).
pub fn matmul_group_into(
    ws: &[&QuantMatrix],
    x: &[f32],
    rows: usize,
    ys: &mut [&mut [f32]],
) -> Result<(), Error> {
    let mut outs: Vec<&mut [MaybeUninit<f32>]> = ys.iter_mut().map(|y| as_uninit(y)).collect();
    matmul_group(ws, x, rows, &mut outs)
}

/// [`matmul_group`] with a given instruction set (scalar where the CPU lacks it).
pub fn matmul_group_with(
    isa: Isa,
    ws: &[&QuantMatrix],
    x: &[f32],
    rows: usize,
    ys: &mut [&mut [MaybeUninit<f32>]],
) -> Result<(), Error> {
    if ws.len() != ys.len() {
        return Err(Error::Shape {
            what: "outputs (one per matrix)",
            expected: ws.len(),
            actual: ys.len(),
        });
    }
    let Some(cols) = ws.first().map(|w| w.cols()) else {
        return Ok(());
    };
    if let Some(w) = ws.iter().find(|w| w.cols() != cols) {
        return Err(Error::Shape {
            what: "matrix row length (a group shares its input)",
            expected: cols,
            actual: w.cols(),
        });
    }
    if x.len() != rows * cols {
        return Err(Error::Shape {
            what: "activations",
            expected: rows * cols,
            actual: x.len(),
        });
    }
    let isa = isa.checked();
    // One quantised copy of `x` per activation format (rarely more than one).
    let mut acts: Vec<QuantizedActs> = Vec::new();
    for w in ws {
        let act = w.qtype().act_type();
        if !acts.iter().any(|a| a.act_type() == act) {
            acts.push(QuantizedActs::with_isa(isa, act, x, rows, cols));
        }
    }
    let products = ws
        .iter()
        .zip(ys.iter_mut())
        .map(|(w, y)| {
            let a = acts
                .iter()
                .find(|a| a.act_type() == w.qtype().act_type())
                .expect("quantised above");
            Product::new(isa, w, a, y)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    run(isa, &products);
    Ok(())
}

/// The output pointer shared by the tasks; each writes a disjoint set of columns.
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements (distinct output columns) and the slice outlives
// the parallel section.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}
impl OutPtr {
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// One product of a parallel section, checked: `y = acts Wᵀ`, `y` `[rows, w.rows()]`.
struct Product<'a> {
    w: &'a QuantMatrix<'a>,
    acts: &'a QuantizedActs,
    y: OutPtr,
    tile: TileFn,
    /// The kernels for `w`'s packed groups, where `isa` has them.
    grouped: Option<crate::groups::GroupKernels>,
}

impl<'a> Product<'a> {
    fn new(
        isa: Isa,
        w: &'a QuantMatrix<'a>,
        acts: &'a QuantizedActs,
        y: &'a mut [MaybeUninit<f32>],
    ) -> Result<Self, Error> {
        if acts.act_type() != w.qtype().act_type() || acts.cols() != w.cols() {
            return Err(Error::Shape {
                what: "quantised activations (format or row length)",
                expected: w.cols(),
                actual: acts.cols(),
            });
        }
        if y.len() != acts.rows() * w.rows() {
            return Err(Error::Shape {
                what: "output",
                expected: acts.rows() * w.rows(),
                actual: y.len(),
            });
        }
        Ok(Product {
            w,
            acts,
            y: OutPtr(y.as_mut_ptr() as *mut f32),
            tile: tile_fn(w.qtype()),
            grouped: crate::groups::group_kernels(isa, w.qtype()),
        })
    }

    /// Tiles of 8 output features.
    fn tiles(&self) -> usize {
        self.w.rows().div_ceil(8)
    }

    /// Writes the outputs of tiles `tiles` for every activation row: a decode step's
    /// packed groups in one call of the run kernel, the others tile by tile.
    fn run_tiles(
        &self,
        isa: Isa,
        tiles: std::ops::Range<usize>,
        buf: &mut [[f32; 8]; MAX_TILE_ROWS],
        unpacked: &mut Vec<u8>,
    ) {
        let mut first = tiles.start;
        if let (1, Some(grouped)) = (self.acts.rows(), self.grouped) {
            let packed_end = tiles.end.min(self.w.grouped_rows() / 8);
            if first < packed_end {
                let n = 8 * (packed_end - first);
                // SAFETY: y holds rows · out = out values (checked in `new`); outputs
                // 8 · first .. 8 · packed_end belong to this task's tiles only.
                let y = unsafe { std::slice::from_raw_parts_mut(self.y.get().add(8 * first), n) };
                (grouped.run)(self.w.groups(first..packed_end), self.acts, 0, y);
                first = packed_end;
            }
        }
        for tile in first..tiles.end {
            self.run_tile(isa, tile, buf, unpacked);
        }
    }

    /// Writes the outputs of tile `tile` for every activation row. `unpacked` is scratch
    /// for a packed group's rows in row-major order.
    fn run_tile(
        &self,
        isa: Isa,
        tile: usize,
        buf: &mut [[f32; 8]; MAX_TILE_ROWS],
        unpacked: &mut Vec<u8>,
    ) {
        let (w, acts) = (self.w, self.acts);
        let (out, rows) = (w.rows(), acts.rows());
        let o0 = tile * 8;
        let valid = (out - o0).min(8);
        let packed = o0 < w.grouped_rows();
        let wr: [&[u8]; 8] = match (packed, self.grouped) {
            (true, Some(_)) => [&[]; 8],
            (true, None) => {
                // An instruction set without the grouped kernel reads the group's rows
                // unpacked (once per tile, for all of its activation rows).
                let n = w.row_bytes();
                unpacked.resize(8 * n, 0);
                w.group_rows_into(tile, unpacked);
                std::array::from_fn(|i| &unpacked[i * n..(i + 1) * n])
            }
            // A partial last tile repeats the last row; its extra outputs are dropped.
            (false, _) => std::array::from_fn(|i| w.row((o0 + i).min(out - 1))),
        };
        let mut a0 = 0;
        while a0 < rows {
            let a1 = (a0 + MAX_TILE_ROWS).min(rows);
            match self.grouped {
                Some(grouped) if packed => {
                    (grouped.tile)(w.group(tile), acts, a0, a1, &mut buf[..a1 - a0])
                }
                _ => (self.tile)(isa, &wr, acts, a0, a1, &mut buf[..a1 - a0]),
            }
            for (ai, vals) in buf[..a1 - a0].iter().enumerate() {
                let base = (a0 + ai) * out + o0;
                for (i, &v) in vals[..valid].iter().enumerate() {
                    // SAFETY: base + i < rows * out = y.len() (checked in `new`); column
                    // o0 + i belongs to this tile's task only.
                    unsafe { *self.y.get().add(base + i) = v };
                }
            }
            a0 = a1;
        }
    }
}

/// Writes every element of every product's output. The products' tiles are numbered one
/// after another and cut into a few contiguous ranges, one task each.
fn run(isa: Isa, products: &[Product]) {
    let ntiles: usize = products.iter().map(Product::tiles).sum();
    let macs: usize = products
        .iter()
        .map(|p| p.w.rows() * p.acts.rows() * p.w.cols())
        .sum();
    if ntiles == 0 || products.iter().all(|p| p.acts.rows() == 0) {
        return;
    }
    let threads = crate::team::current_threads();
    let ntasks = if threads <= 1 || macs < PAR_MIN_MACS {
        1
    } else {
        (threads * 8).min(ntiles)
    };
    let body = |t: usize| {
        let mut buf = [[0f32; 8]; MAX_TILE_ROWS];
        let mut unpacked = Vec::new();
        let (mut p, mut first) = (0, 0);
        let (mut g, end) = (t * ntiles / ntasks, (t + 1) * ntiles / ntasks);
        // The task's tiles, product by product.
        while g < end {
            while g >= first + products[p].tiles() {
                first += products[p].tiles();
                p += 1;
            }
            let stop = end.min(first + products[p].tiles());
            products[p].run_tiles(isa, g - first..stop - first, &mut buf, &mut unpacked);
            g = stop;
        }
    };
    crate::team::for_each_index(ntasks, body);
}
