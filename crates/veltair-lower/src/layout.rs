//! Activation layouts: ONNX row-major order (`Plain`) or channels-last for 4-D images
//! (`Nhwc`: logical `[N, C, H, W]` stored as `[N, H, W, C]`), and conversions between them.

/// How a value's elements are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    Plain,
    Nhwc,
}

/// Whether both layouts store a tensor of this shape identically (not an image, or a single
/// channel, or a single pixel).
pub fn layouts_agree(shape: &[usize]) -> bool {
    shape.len() != 4 || shape[1] == 1 || shape[2] * shape[3] == 1
}

/// The stored shape of logical `shape` in `layout`.
pub fn stored_shape(shape: &[usize], layout: Layout) -> Vec<usize> {
    match layout {
        Layout::Nhwc if shape.len() == 4 => vec![shape[0], shape[2], shape[3], shape[1]],
        _ => shape.to_vec(),
    }
}

/// The permutation that turns a plain tensor into `layout` (`out[i] = in[perm[i]]` axes).
pub fn to_layout_perm(layout: Layout, rank: usize) -> Vec<usize> {
    match layout {
        Layout::Nhwc if rank == 4 => vec![0, 2, 3, 1],
        _ => (0..rank).collect(),
    }
}

/// The permutation that turns a tensor stored in `layout` back into plain order.
pub fn from_layout_perm(layout: Layout, rank: usize) -> Vec<usize> {
    match layout {
        Layout::Nhwc if rank == 4 => vec![0, 3, 1, 2],
        _ => (0..rank).collect(),
    }
}

/// Where logical axis `axis` lies in the stored order.
pub fn stored_axis(axis: usize, rank: usize, layout: Layout) -> usize {
    match layout {
        Layout::Nhwc if rank == 4 => [0, 3, 1, 2][axis],
        _ => axis,
    }
}

/// Plain data of logical `shape` rearranged into `layout`.
pub fn arrange(data: &[f32], shape: &[usize], layout: Layout) -> Vec<f32> {
    if layouts_agree(shape) || layout == Layout::Plain {
        return data.to_vec();
    }
    let (n, c, hw) = (shape[0], shape[1], shape[2] * shape[3]);
    let mut out = vec![0.0; data.len()];
    for b in 0..n {
        for ci in 0..c {
            for p in 0..hw {
                out[(b * hw + p) * c + ci] = data[(b * c + ci) * hw + p];
            }
        }
    }
    out
}

/// `shape` left-padded with ones to `rank` axes (ONNX broadcasting alignment).
pub fn align_rank(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut out = vec![1; rank.saturating_sub(shape.len())];
    out.extend_from_slice(shape);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_invert_each_other() {
        let to = to_layout_perm(Layout::Nhwc, 4);
        let from = from_layout_perm(Layout::Nhwc, 4);
        for i in 0..4 {
            assert_eq!(to[from[i]], i);
            assert_eq!(stored_axis(to[i], 4, Layout::Nhwc), i);
        }
        assert_eq!(stored_shape(&[2, 3, 4, 5], Layout::Nhwc), vec![2, 4, 5, 3]);
    }

    #[test]
    fn arrange_moves_channels_last() {
        let data: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let nhwc = arrange(&data, &[1, 3, 2, 2], Layout::Nhwc);
        assert_eq!(nhwc, vec![0.0, 4.0, 8.0, 1.0, 5.0, 9.0, 2.0, 6.0, 10.0, 3.0, 7.0, 11.0]);
        assert!(layouts_agree(&[2, 8, 1, 1]) && layouts_agree(&[2, 1, 3, 3]) && !layouts_agree(&[1, 2, 2, 1]));
    }
}
