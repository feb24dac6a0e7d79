//! Where a plan's constants (packed weights, biases) live: vectors the lowering produced, or
//! ranges of a mapped bundle file, read in place.

use std::ops::Range;
use std::sync::Arc;
use veltair_load::{ConstantTable, MappedFile};

/// A plan's constants.
#[derive(Clone)]
pub enum Constants {
    Owned(Vec<Vec<f32>>),
    /// Byte ranges of a mapped file, each 4-byte aligned in memory (checked by `mapped`).
    Mapped(Arc<MappedFile>, Vec<Range<usize>>),
}

impl Constants {
    /// Constants read in place from `file`, or `None` when a range lies outside the file or
    /// is not a whole number of aligned f32s.
    pub fn mapped(file: Arc<MappedFile>, ranges: Vec<Range<usize>>) -> Option<Constants> {
        let fits = ranges
            .iter()
            .all(|r| file.bytes().get(r.clone()).is_some_and(|b| bytemuck::try_cast_slice::<u8, f32>(b).is_ok()));
        fits.then_some(Constants::Mapped(file, ranges))
    }

    pub fn len(&self) -> usize {
        match self {
            Constants::Owned(v) => v.len(),
            Constants::Mapped(_, r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Constant `index` (`None` when out of range).
    pub fn get(&self, index: usize) -> Option<&[f32]> {
        match self {
            Constants::Owned(v) => v.get(index).map(Vec::as_slice),
            Constants::Mapped(file, ranges) => {
                let bytes = file.bytes().get(ranges.get(index)?.clone())?;
                bytemuck::try_cast_slice(bytes).ok()
            }
        }
    }

    /// Total bytes.
    pub fn bytes(&self) -> usize {
        (0..self.len()).filter_map(|i| self.get(i)).map(|c| c.len() * 4).sum()
    }
}

impl ConstantTable for Constants {
    fn constant(&self, index: usize) -> Option<&[f32]> {
        self.get(index)
    }
}

impl std::fmt::Debug for Constants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Constants::Owned(_) => "owned",
            Constants::Mapped(..) => "mapped",
        };
        write!(f, "{} {kind} constants ({} bytes)", self.len(), self.bytes())
    }
}
