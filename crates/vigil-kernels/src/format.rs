//! Block formats, the weight matrix type and errors.

use std::borrow::Cow;
use std::fmt;

/// A weight block format, byte-compatible with the GGUF / ggml type of the same name.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// 32 weights: f16 scale + 16 bytes of 4-bit values (see [`crate::q4_0`]).
    Q4_0,
    /// 32 weights: f16 scale, f16 minimum + 16 bytes of 4-bit values (see [`crate::q4_1`]).
    Q4_1,
    /// 32 weights: f16 scale, 32 high bits + 16 bytes of low nibbles (see [`crate::q5_0`]).
    Q5_0,
    /// 32 weights: f16 scale + 32 signed bytes (see [`crate::q8_0`]).
    Q8_0,
    /// 256 weights in 8 sub-blocks with 6-bit scales and minima (see [`crate::q4_k`]).
    Q4K,
    /// 256 weights in 16 sub-blocks with 8-bit scales, 6-bit values (see [`crate::q6_k`]).
    Q6K,
}

impl QuantType {
    /// Every supported type.
    pub const ALL: [QuantType; 6] = [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q8_0,
        QuantType::Q4K,
        QuantType::Q6K,
    ];

    /// Weights per block.
    pub const fn block_elems(self) -> usize {
        match self {
            QuantType::Q4K | QuantType::Q6K => 256,
            _ => 32,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            QuantType::Q4_0 => 18,
            QuantType::Q4_1 => 20,
            QuantType::Q5_0 => 22,
            QuantType::Q8_0 => 34,
            QuantType::Q4K => 144,
            QuantType::Q6K => 210,
        }
    }

    /// The activation format ggml pairs with this weight format on x86.
    pub const fn act_type(self) -> ActType {
        match self {
            QuantType::Q4_1 => ActType::Q8_1,
            QuantType::Q4K | QuantType::Q6K => ActType::Q8K,
            _ => ActType::Q8_0,
        }
    }

    /// The ggml type id (as stored in a GGUF tensor header).
    pub const fn ggml_type_id(self) -> u32 {
        match self {
            QuantType::Q4_0 => 2,
            QuantType::Q4_1 => 3,
            QuantType::Q5_0 => 6,
            QuantType::Q8_0 => 8,
            QuantType::Q4K => 12,
            QuantType::Q6K => 14,
        }
    }

    /// The type of a ggml type id, if supported.
    pub const fn from_ggml_type_id(id: u32) -> Option<QuantType> {
        Some(match id {
            2 => QuantType::Q4_0,
            3 => QuantType::Q4_1,
            6 => QuantType::Q5_0,
            8 => QuantType::Q8_0,
            12 => QuantType::Q4K,
            14 => QuantType::Q6K,
            _ => return None,
        })
    }
}

/// A quantised activation format (see [`crate::act`]).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActType {
    /// 32 values: f16 `d` + 32 × i8 (34 bytes).
    Q8_0,
    /// 32 values: f16 `d`, f16 `s = d · Σq` + 32 × i8 (36 bytes).
    Q8_1,
    /// 256 values: f32 `d` + 256 × i8 + 16 × i16 sums of 16 (292 bytes).
    Q8K,
}

impl ActType {
    /// Values per block.
    pub const fn block_elems(self) -> usize {
        match self {
            ActType::Q8K => 256,
            _ => 32,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            ActType::Q8_0 => 34,
            ActType::Q8_1 => 36,
            ActType::Q8K => 292,
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The row length is not a multiple of the format's block size.
    RowNotBlockMultiple { qtype: QuantType, cols: usize },
    /// The byte buffer does not have the size the shape implies.
    DataLength {
        qtype: QuantType,
        rows: usize,
        cols: usize,
        expected: usize,
        actual: usize,
    },
    /// An input or output slice has the wrong length.
    Shape {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::RowNotBlockMultiple { qtype, cols } => write!(
                f,
                "{qtype:?} rows must be a multiple of {} values, got {cols}",
                qtype.block_elems()
            ),
            Error::DataLength {
                qtype,
                rows,
                cols,
                expected,
                actual,
            } => write!(
                f,
                "{qtype:?} [{rows}, {cols}] needs {expected} bytes, got {actual}"
            ),
            Error::Shape {
                what,
                expected,
                actual,
            } => write!(f, "{what}: expected {expected} values, got {actual}"),
        }
    }
}

impl std::error::Error for Error {}

/// How a [`QuantMatrix`]'s rows lie in its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row after row, as a GGUF file stores them.
    RowMajor,
    /// Rows in groups of 8, each group packed block column by block column for the decode
    /// kernel (32-value block formats; see [`QuantMatrix::packed_for`]). Rows after the
    /// last full group stay row-major; every group keeps the byte range its rows have in
    /// the row-major matrix.
    RowGroups,
}

/// Bytes a copy for decode makes between two reports of its progress (a caller whose
/// bytes are a file mapping hands those pages back as it goes).
const COPY_SLICE: usize = 4 << 20;

/// A matrix's bytes: borrowed (a memory map, a `QTensor`), its own, or a decode copy in a
/// [`crate::StreamArena`].
#[derive(Clone)]
enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
    Arena(crate::pages::ArenaBytes),
}

impl std::ops::Deref for Bytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Owned(v) => v,
            Bytes::Arena(a) => a,
        }
    }
}

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Bytes::Borrowed(_) => "borrowed",
            Bytes::Owned(_) => "owned",
            Bytes::Arena(_) => "in an arena",
        };
        write!(f, "{} bytes, {kind}", self.len())
    }
}

/// A block-quantised matrix `[rows, cols]` (`rows` = output features, `cols` = input
/// features), as raw GGUF tensor bytes: row after row, each row `cols / block_elems`
/// blocks ([`Layout::RowMajor`]), or packed for decode ([`Layout::RowGroups`]). Borrowed
/// (e.g. from a memory map or a `QTensor`), owned, or a decode copy in a
/// [`crate::StreamArena`].
#[derive(Debug, Clone)]
pub struct QuantMatrix<'a> {
    data: Bytes<'a>,
    qtype: QuantType,
    rows: usize,
    cols: usize,
    layout: Layout,
}

impl<'a> QuantMatrix<'a> {
    /// Checks that `data` holds exactly `rows` rows of `cols` values.
    pub fn new(
        data: impl Into<Cow<'a, [u8]>>,
        qtype: QuantType,
        rows: usize,
        cols: usize,
    ) -> Result<Self, Error> {
        let data = match data.into() {
            Cow::Borrowed(b) => Bytes::Borrowed(b),
            Cow::Owned(v) => Bytes::Owned(v),
        };
        if !cols.is_multiple_of(qtype.block_elems()) {
            return Err(Error::RowNotBlockMultiple { qtype, cols });
        }
        let expected = rows * (cols / qtype.block_elems()) * qtype.block_bytes();
        if data.len() != expected {
            return Err(Error::DataLength {
                qtype,
                rows,
                cols,
                expected,
                actual: data.len(),
            });
        }
        Ok(QuantMatrix {
            data,
            qtype,
            rows,
            cols,
            layout: Layout::RowMajor,
        })
    }

    /// A matrix that borrows `data`.
    pub fn borrowed(
        data: &'a [u8],
        qtype: QuantType,
        rows: usize,
        cols: usize,
    ) -> Result<Self, Error> {
        Self::new(Cow::Borrowed(data), qtype, rows, cols)
    }

    /// A matrix that owns `data`.
    pub fn owned(
        data: Vec<u8>,
        qtype: QuantType,
        rows: usize,
        cols: usize,
    ) -> Result<QuantMatrix<'static>, Error> {
        QuantMatrix::new(Cow::Owned(data), qtype, rows, cols)
    }

    /// The same matrix owning its bytes.
    pub fn into_owned(self) -> QuantMatrix<'static> {
        QuantMatrix {
            data: match self.data {
                Bytes::Borrowed(b) => Bytes::Owned(b.to_vec()),
                Bytes::Owned(v) => Bytes::Owned(v),
                Bytes::Arena(a) => Bytes::Arena(a),
            },
            qtype: self.qtype,
            rows: self.rows,
            cols: self.cols,
            layout: self.layout,
        }
    }

    /// The same matrix borrowing this one's bytes.
    pub fn view(&self) -> QuantMatrix<'_> {
        QuantMatrix {
            data: Bytes::Borrowed(&self.data),
            qtype: self.qtype,
            rows: self.rows,
            cols: self.cols,
            layout: self.layout,
        }
    }

    /// A copy in [`Layout::RowGroups`] if `isa` has a decode kernel for that layout and
    /// this format (AVX2 and AVX-512 VNNI, 32-value block formats) and the matrix has a full group
    /// of rows; `None` otherwise (the row-major matrix is then the faster one). Products
    /// over the copy equal products over `self` bit for bit, with any instruction set.
    pub fn packed_for(&self, isa: crate::Isa) -> Option<QuantMatrix<'static>> {
        crate::groups::group_kernels(isa.checked(), self.qtype)?;
        self.with_row_groups()
    }

    /// The copy a decode step should stream, placed in `arena`: in row groups where `isa`
    /// has that kernel ([`Self::packed_for`]), otherwise row-major, either way on huge
    /// pages (the `pages` module: one core streams faster from 2 MiB pages than from the
    /// 4 KiB pages of a file mapping). Made a few megabytes at a time: after each slice,
    /// `copied(prefix)` gets the part of [`Self::data`] copied so far, so a caller whose
    /// bytes are a file mapping can hand those pages back as it goes and no weight is
    /// ever held twice, not even while it is being copied. Products over the copy equal
    /// products over `self` bit for bit.
    pub fn decode_copy_in(
        &self,
        isa: crate::Isa,
        arena: &mut crate::StreamArena,
        copied: &mut dyn FnMut(&[u8]),
    ) -> QuantMatrix<'static> {
        let grouped =
            self.can_group() && crate::groups::group_kernels(isa.checked(), self.qtype).is_some();
        let (data, ()) = arena.alloc_with(self.data.len(), |dst| {
            if grouped {
                self.pack_rows_into(dst, copied);
            } else {
                for (start, chunk) in (0..).step_by(COPY_SLICE).zip(self.data.chunks(COPY_SLICE)) {
                    dst[start..start + chunk.len()].copy_from_slice(chunk);
                    copied(&self.data[..start + chunk.len()]);
                }
            }
        });
        QuantMatrix {
            data: Bytes::Arena(data),
            qtype: self.qtype,
            rows: self.rows,
            cols: self.cols,
            layout: if grouped {
                Layout::RowGroups
            } else {
                self.layout
            },
        }
    }

    /// A copy in [`Layout::RowGroups`] whatever the instruction set, or `None` if the
    /// format has no such layout or the matrix has fewer than 8 rows.
    pub fn with_row_groups(&self) -> Option<QuantMatrix<'static>> {
        if !self.can_group() {
            return None;
        }
        let mut data = crate::pages::zeroed_streamed(self.data.len());
        self.pack_rows_into(&mut data, &mut |_| {});
        Some(QuantMatrix {
            data: Bytes::Owned(data),
            qtype: self.qtype,
            rows: self.rows,
            cols: self.cols,
            layout: Layout::RowGroups,
        })
    }

    /// Whether this matrix can be packed in row groups: row-major, a format with that
    /// layout, a full group of rows.
    fn can_group(&self) -> bool {
        self.layout == Layout::RowMajor
            && crate::groups::packable(self.qtype)
            && self.rows >= crate::groups::GROUP
    }

    /// Packs this row-major matrix's groups into `data` (its length), rows after the last
    /// full group as they are; `packed(prefix)` after each few megabytes of rows.
    fn pack_rows_into(&self, data: &mut [u8], packed: &mut dyn FnMut(&[u8])) {
        use crate::groups::{pack_group, GROUP};
        let span = GROUP * self.row_bytes();
        let grouped = self.rows / GROUP * span;
        let per_slice = (COPY_SLICE / span).max(1) * span;
        for start in (0..grouped).step_by(per_slice) {
            let end = (start + per_slice).min(grouped);
            for (src, dst) in self.data[start..end]
                .chunks_exact(span)
                .zip(data[start..end].chunks_exact_mut(span))
            {
                pack_group(self.qtype, src, dst);
            }
            packed(&self.data[..end]);
        }
        data[grouped..].copy_from_slice(&self.data[grouped..]);
        packed(&self.data);
    }

    /// How the rows lie in the bytes.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Rows that lie in packed groups (none in a row-major matrix): a multiple of 8.
    pub fn grouped_rows(&self) -> usize {
        match self.layout {
            Layout::RowMajor => 0,
            Layout::RowGroups => self.rows / crate::groups::GROUP * crate::groups::GROUP,
        }
    }

    /// The packed bytes of the group holding rows `8g..8g + 8`.
    pub(crate) fn group(&self, g: usize) -> &[u8] {
        self.groups(g..g + 1)
    }

    /// The packed bytes of groups `gs` (rows `8 · gs.start..8 · gs.end`), one after
    /// another.
    pub(crate) fn groups(&self, gs: std::ops::Range<usize>) -> &[u8] {
        let span = crate::groups::GROUP * self.row_bytes();
        assert!(
            gs.end * crate::groups::GROUP <= self.grouped_rows(),
            "groups {gs:?} are not all packed"
        );
        &self.data[gs.start * span..gs.end * span]
    }

    /// Rows `8g..8g + 8` as row-major bytes into `out` (8 × [`Self::row_bytes`]), from a
    /// packed group or copied.
    pub(crate) fn group_rows_into(&self, g: usize, out: &mut [u8]) {
        let span = crate::groups::GROUP * self.row_bytes();
        if (g + 1) * crate::groups::GROUP <= self.grouped_rows() {
            crate::groups::unpack_group(self.qtype, self.group(g), out);
        } else {
            out.copy_from_slice(&self.data[g * span..(g + 1) * span]);
        }
    }

    pub fn qtype(&self) -> QuantType {
        self.qtype
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.cols / self.qtype.block_elems() * self.qtype.block_bytes()
    }

    /// The bytes of row `r`, which must not lie in a packed group (see
    /// [`Self::grouped_rows`]).
    pub fn row(&self, r: usize) -> &[u8] {
        assert!(r >= self.grouped_rows(), "row {r} lies in a packed group");
        let n = self.row_bytes();
        &self.data[r * n..(r + 1) * n]
    }

    /// Row `r` as f32 (`out.len() == cols`), in either layout.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        if r < self.grouped_rows() {
            let g = r / crate::groups::GROUP;
            let mut rows = vec![0u8; crate::groups::GROUP * self.row_bytes()];
            self.group_rows_into(g, &mut rows);
            let n = self.row_bytes();
            let k = r % crate::groups::GROUP;
            crate::dequantize_row(self.qtype, &rows[k * n..(k + 1) * n], out)
        } else {
            crate::dequantize_row(self.qtype, self.row(r), out)
        }
    }

    /// The whole matrix as f32, row-major (a packed group unpacked once for its 8 rows).
    pub fn dequantize(&self) -> Vec<f32> {
        use crate::groups::GROUP;
        let mut out = vec![0f32; self.rows * self.cols];
        if self.cols == 0 {
            return out;
        }
        let n = self.row_bytes();
        let mut rows = vec![0u8; GROUP * n];
        let grouped = self.grouped_rows();
        for (g, chunk) in out[..grouped * self.cols]
            .chunks_mut(GROUP * self.cols)
            .enumerate()
        {
            self.group_rows_into(g, &mut rows);
            for (row, o) in rows.chunks_exact(n).zip(chunk.chunks_mut(self.cols)) {
                crate::dequantize_row(self.qtype, row, o);
            }
        }
        for (r, chunk) in out[grouped * self.cols..].chunks_mut(self.cols).enumerate() {
            self.dequantize_row(grouped + r, chunk);
        }
        out
    }
}

/// Little-endian f16 at `b[at..at + 2]` as f32 (exact).
#[inline]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Little-endian f32 at `b[at..at + 4]`.
#[inline]
pub(crate) fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
