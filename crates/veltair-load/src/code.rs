//! Machine code for one kernel with the contract the loader checks before every call, the
//! table its constant arguments come from, and the loader's errors.

/// Relocation-free machine code for one layer function, with the buffer sizes (in f32
/// elements) it reads and writes through its argument table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineCode {
    pub bytes: Vec<u8>,
    /// Alignment the code needs in memory (a power of two, at most a page).
    pub alignment: u64,
    /// Elements each argument-table entry must provide, in table order.
    pub arg_elems: Vec<usize>,
    /// Most threads the code may run on (its per-thread scratch is sized for that many).
    pub max_threads: usize,
    /// CPU features the code uses (`avx2`, `fma`, ...); loading refuses a host without them.
    pub features: Vec<String>,
}

/// Read-only kernel operands (packed weights, biases) by index, wherever they live (owned
/// vectors, or a mapped bundle file).
pub trait ConstantTable {
    fn constant(&self, index: usize) -> Option<&[f32]>;
}

impl<C: AsRef<[f32]>> ConstantTable for [C] {
    fn constant(&self, index: usize) -> Option<&[f32]> {
        self.get(index).map(AsRef::as_ref)
    }
}

/// Why code cannot be loaded or called.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("this CPU lacks features the code needs: {}", .0.join(", "))]
    MissingFeatures(Vec<String>),
    #[error("cannot map code: {0}")]
    Map(String),
    #[error("{given} buffers given, the kernel takes {takes}")]
    Arity { given: usize, takes: usize },
    #[error("buffer #{index} has {have} elements, the kernel needs {need}")]
    ShortBuffer { index: usize, have: usize, need: usize },
    #[error("argument #{index} ({offset}+{len}) lies outside the {arena}-element arena")]
    OutsideArena { index: usize, offset: usize, len: usize, arena: usize },
    #[error("argument #{index} names missing constant {constant}")]
    MissingConstant { index: usize, constant: usize },
    #[error("argument #{0} partly overlaps another")]
    Overlap(usize),
    #[error("{threads} threads requested, the kernel supports {max}")]
    TooManyThreads { threads: usize, max: usize },
}
