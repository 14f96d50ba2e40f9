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

/// A block-quantised matrix `[rows, cols]` (`rows` = output features, `cols` = input
/// features), as raw GGUF tensor bytes: row after row, each row `cols / block_elems`
/// blocks. Borrowed (e.g. from a memory map or a `QTensor`) or owned.
#[derive(Debug, Clone)]
pub struct QuantMatrix<'a> {
    data: Cow<'a, [u8]>,
    qtype: QuantType,
    rows: usize,
    cols: usize,
}

impl<'a> QuantMatrix<'a> {
    /// Checks that `data` holds exactly `rows` rows of `cols` values.
    pub fn new(
        data: impl Into<Cow<'a, [u8]>>,
        qtype: QuantType,
        rows: usize,
        cols: usize,
    ) -> Result<Self, Error> {
        let data = data.into();
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
            data: Cow::Owned(self.data.into_owned()),
            qtype: self.qtype,
            rows: self.rows,
            cols: self.cols,
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

    /// The bytes of row `r`.
    pub fn row(&self, r: usize) -> &[u8] {
        let n = self.row_bytes();
        &self.data[r * n..(r + 1) * n]
    }

    /// Row `r` as f32 (`out.len() == cols`).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        crate::dequantize_row(self.qtype, self.row(r), out)
    }

    /// The whole matrix as f32, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        for (r, chunk) in out.chunks_mut(self.cols.max(1)).enumerate().take(self.rows) {
            self.dequantize_row(r, chunk);
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
