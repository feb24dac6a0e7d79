//! Strided copies against the reference evaluator's data-movement operators, bit for bit:
//! random transposes (rank 1–5), NCHW↔NHWC conversion, slices with negative steps, Concat and
//! Split parts (each kernel may write only its own region), expands, long runs that are cut
//! into chunks, and thread counts; plus the specs the generator must refuse.

mod common;

use common::{nchw_to_nhwc, values};
use proptest::prelude::*;
use veltair_codegen::copy::{compile_copy, CopySpec};
use veltair_codegen::{OptLevel, Target};
use veltair_ir::{Op, SliceAxis, Tensor};
use veltair_load::LoadedKernel;

fn target() -> Target {
    Target::x86_64_v3(OptLevel::None).unwrap()
}

/// Runs the copy over `src` into a destination of NaN sentinels and returns it.
fn run(spec: &CopySpec, src: &[f32], threads: usize) -> Result<Vec<f32>, TestCaseError> {
    let target = target();
    let code = compile_copy(spec, &target).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let kernel = LoadedKernel::load(&code).unwrap();
    let mut src = src.to_vec();
    let mut dst = vec![f32::NAN; spec.dst_elems];
    kernel.run(&mut [&mut src, &mut dst], threads).unwrap();
    Ok(dst)
}

fn same_bits(got: &[f32], want: &[f32]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        prop_assert!(g.to_bits() == w.to_bits(), "element {}: got {}, want {}", i, g, w);
    }
    Ok(())
}

fn reference(op: Op, inputs: &[&Tensor]) -> Vec<Tensor> {
    let inputs: Vec<Option<&Tensor>> = inputs.iter().map(|&t| Some(t)).collect();
    veltair_ref::eval_op(&op, &inputs).unwrap()
}

fn row_major(shape: &[usize]) -> Vec<isize> {
    (0..shape.len()).map(|i| shape[i + 1..].iter().product::<usize>() as isize).collect()
}

fn tensor(shape: &[usize], seed: u32) -> Tensor {
    Tensor::from_f32(shape.to_vec(), values(shape.iter().product(), seed)).unwrap()
}

fn shape_and_perm() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (1usize..=5).prop_flat_map(|rank| {
        (prop::collection::vec(1usize..8, rank), Just((0..rank).collect::<Vec<_>>()).prop_shuffle())
    })
}

/// A shape and, per axis, an optional `(start, step, len)` slice of it.
fn shape_and_slices() -> impl Strategy<Value = (Vec<usize>, Vec<SliceAxis>)> {
    prop::collection::vec(1usize..9, 1..=4).prop_flat_map(|shape| {
        let axes: Vec<_> = shape
            .iter()
            .map(|&dim| {
                (any::<bool>(), 0..dim, prop_oneof![-3i64..=-1, 1i64..=3], 0usize..=dim).prop_map(
                    move |(sliced, start, step, len)| {
                        // As many elements as fit from `start` in direction `step`, at most `len`.
                        let room = if step > 0 { (dim - 1 - start) / step as usize } else { start / (-step) as usize };
                        sliced.then_some((start, step, len.min(room + 1)))
                    },
                )
            })
            .collect();
        (Just(shape), axes).prop_map(|(shape, axes)| {
            let slices = axes
                .into_iter()
                .enumerate()
                .filter_map(|(axis, s)| s.map(|(start, step, len)| SliceAxis { axis, start, step, len }))
                .collect();
            (shape, slices)
        })
    })
}

/// An output shape, an input shape broadcasting to it (ones and dropped leading axes).
fn expand_shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec((1usize..7, any::<bool>()), 1..=4).prop_flat_map(|dims| {
        let out: Vec<usize> = dims.iter().map(|d| d.0).collect();
        let input: Vec<usize> = dims.iter().map(|&(d, keep)| if keep { d } else { 1 }).collect();
        (Just(out), 0..=input.len()).prop_map(move |(out, drop)| (input[drop..].to_vec(), out))
    })
}

/// Part shapes along a random axis of a random shape.
fn concat_parts() -> impl Strategy<Value = (Vec<Vec<usize>>, usize)> {
    prop::collection::vec(1usize..6, 1..=4).prop_flat_map(|shape| {
        let rank = shape.len();
        (0..rank, prop::collection::vec(1usize..6, 2..=3)).prop_map(move |(axis, sizes)| {
            let parts = sizes
                .into_iter()
                .map(|s| {
                    let mut p = shape.clone();
                    p[axis] = s;
                    p
                })
                .collect();
            (parts, axis)
        })
    })
}

/// Checks each concat part's kernel writes exactly its region of the output.
fn check_concat(parts: &[Vec<usize>], axis: usize, threads: usize) -> Result<(), TestCaseError> {
    let inputs: Vec<Tensor> = parts.iter().enumerate().map(|(i, p)| tensor(p, i as u32 + 3)).collect();
    let want = reference(Op::Concat { axis }, &inputs.iter().collect::<Vec<_>>()).remove(0);
    let out_shape = want.shape().to_vec();
    let want = want.as_f32("y").unwrap();
    let inner: usize = out_shape[axis + 1..].iter().product();
    let mut offset = 0;
    for (part, x) in parts.iter().zip(&inputs) {
        let spec = CopySpec::concat_part(part, &out_shape, axis, offset).unwrap();
        let got = run(&spec, x.as_f32("x").unwrap(), threads)?;
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let along = i / inner % out_shape[axis];
            if (offset..offset + part[axis]).contains(&along) {
                prop_assert!(g.to_bits() == w.to_bits(), "part at {}: element {} got {}, want {}", offset, i, g, w);
            } else {
                prop_assert!(g.is_nan(), "part at {} wrote element {} outside its region", offset, i);
            }
        }
        offset += part[axis];
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn transpose_matches_reference((shape, perm) in shape_and_perm(), threads in 1usize..5) {
        let x = tensor(&shape, 1);
        let want = reference(Op::Transpose(perm.clone()), &[&x]).remove(0);
        let got = run(&CopySpec::transpose(&shape, &perm).unwrap(), x.as_f32("x").unwrap(), threads)?;
        same_bits(&got, want.as_f32("y").unwrap())?;
    }

    /// A transpose written as a scatter: the source read in order, the destination strided.
    #[test]
    fn scatter_transpose_matches_reference((shape, perm) in shape_and_perm(), threads in 1usize..5) {
        let x = tensor(&shape, 1);
        let want = reference(Op::Transpose(perm.clone()), &[&x]).remove(0);
        let gather = CopySpec::transpose(&shape, &perm).unwrap();
        let mut dst_strides = vec![0; shape.len()];
        for (i, &p) in perm.iter().enumerate() {
            dst_strides[p] = gather.dst_strides[i];
        }
        let scatter = CopySpec { extents: shape.clone(), src_strides: row_major(&shape), dst_strides, ..gather };
        same_bits(&run(&scatter, x.as_f32("x").unwrap(), threads)?, want.as_f32("y").unwrap())?;
    }

    /// Two copies interleave their sources into every other element of the destination.
    #[test]
    fn interleave_with_strided_destination(rows in 1usize..5, len in 1usize..40, threads in 1usize..5) {
        let (a, b) = (values(rows * len, 1), values(rows * len, 2));
        let half = |dst_offset| CopySpec {
            extents: vec![rows, len],
            src_offset: 0,
            src_strides: vec![len as isize, 1],
            dst_offset,
            dst_strides: vec![2 * len as isize, 2],
            src_elems: rows * len,
            dst_elems: 2 * rows * len,
        };
        let (ga, gb) = (run(&half(0), &a, threads)?, run(&half(1), &b, threads)?);
        for i in 0..rows * len {
            prop_assert!(ga[2 * i].to_bits() == a[i].to_bits() && ga[2 * i + 1].is_nan());
            prop_assert!(gb[2 * i + 1].to_bits() == b[i].to_bits() && gb[2 * i].is_nan());
        }
    }

    #[test]
    fn layout_conversion_round_trips(batch in 1usize..3, c in 1usize..140, pixels in 1usize..140, threads in 1usize..5) {
        let x = values(batch * c * pixels, 5);
        let to_nhwc = CopySpec::transpose(&[batch, c, pixels], &[0, 2, 1]).unwrap();
        let nhwc = run(&to_nhwc, &x, threads)?;
        same_bits(&nhwc, &nchw_to_nhwc(&x, batch, c, pixels))?;
        let to_nchw = CopySpec::transpose(&[batch, pixels, c], &[0, 2, 1]).unwrap();
        same_bits(&run(&to_nchw, &nhwc, threads)?, &x)?;
    }

    #[test]
    fn slice_matches_reference((shape, axes) in shape_and_slices(), threads in 1usize..5) {
        let x = tensor(&shape, 2);
        let want = reference(Op::Slice(axes.clone()), &[&x]).remove(0);
        let got = run(&CopySpec::slice(&shape, &axes).unwrap(), x.as_f32("x").unwrap(), threads)?;
        same_bits(&got, want.as_f32("y").unwrap())?;
    }

    #[test]
    fn expand_matches_reference((input, out) in expand_shapes(), threads in 1usize..5) {
        let x = tensor(&input, 4);
        let want = reference(Op::Expand(out.clone()), &[&x]).remove(0);
        prop_assert_eq!(want.shape(), &out[..]);
        let got = run(&CopySpec::expand(&input, &out).unwrap(), x.as_f32("x").unwrap(), threads)?;
        same_bits(&got, want.as_f32("y").unwrap())?;
    }

    #[test]
    fn concat_parts_match_reference((parts, axis) in concat_parts(), threads in 1usize..5) {
        check_concat(&parts, axis, threads)?;
    }

    #[test]
    fn split_pieces_match_reference((parts, axis) in concat_parts(), threads in 1usize..5) {
        let mut shape = parts[0].clone();
        shape[axis] = parts.iter().map(|p| p[axis]).sum();
        let sizes: Vec<usize> = parts.iter().map(|p| p[axis]).collect();
        let x = tensor(&shape, 6);
        let want = reference(Op::Split { axis, sizes: sizes.clone() }, &[&x]);
        let mut start = 0;
        for (len, piece) in sizes.into_iter().zip(want) {
            let spec = CopySpec::slice(&shape, &[SliceAxis { axis, start, step: 1, len }]).unwrap();
            same_bits(&run(&spec, x.as_f32("x").unwrap(), threads)?, piece.as_f32("y").unwrap())?;
            start += len;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Runs of 2048+ elements are cut into chunks (with a remainder nest) for every run kind.
    #[test]
    fn long_runs_match_reference(len in 2040usize..4200, rows in 1usize..4, step in -2i64..=2, threads in 1usize..5) {
        let x = tensor(&[rows, len], 8);
        // Contiguous: concat parts along the long axis.
        check_concat(&[vec![rows, len], vec![rows, 3]], 1, threads)?;
        // Broadcast: a row repeated, and a column expanded along the long axis.
        for (input, out) in [(vec![1, len], vec![rows, len]), (vec![rows, 1], vec![rows, len])] {
            let xi = tensor(&input, 9);
            let want = reference(Op::Expand(out.clone()), &[&xi]).remove(0);
            same_bits(&run(&CopySpec::expand(&input, &out).unwrap(), xi.as_f32("x").unwrap(), threads)?, want.as_f32("y").unwrap())?;
        }
        // Transposed: long columns, then long rows, of 16-row blocks and remainders.
        for shape in [[len, rows * 6], [rows * 6, len]] {
            let xt = tensor(&shape, 10);
            let want = reference(Op::Transpose(vec![1, 0]), &[&xt]).remove(0);
            let got = run(&CopySpec::transpose(&shape, &[1, 0]).unwrap(), xt.as_f32("x").unwrap(), threads)?;
            same_bits(&got, want.as_f32("y").unwrap())?;
        }
        // Strided: every step-th element, forwards or backwards.
        if step != 0 {
            let start = if step > 0 { 0 } else { len - 1 };
            let axes = vec![SliceAxis { axis: 1, start, step, len: len / step.unsigned_abs() as usize }];
            let want = reference(Op::Slice(axes.clone()), &[&x]).remove(0);
            same_bits(&run(&CopySpec::slice(&[rows, len], &axes).unwrap(), x.as_f32("x").unwrap(), threads)?, want.as_f32("y").unwrap())?;
        }
    }
}

#[test]
fn refuses_out_of_bounds_and_overlapping_copies() {
    let target = target();
    let ok = CopySpec::transpose(&[3, 5], &[1, 0]).unwrap();
    assert!(compile_copy(&ok, &target).is_ok());
    let past_src = CopySpec { src_elems: 14, ..ok.clone() };
    assert!(compile_copy(&past_src, &target).is_err());
    let past_dst = CopySpec { dst_offset: 1, ..ok.clone() };
    assert!(compile_copy(&past_dst, &target).is_err());
    let before_src = CopySpec { src_strides: vec![1, -5], ..ok.clone() };
    assert!(compile_copy(&before_src, &target).is_err());
    let overlap = CopySpec { dst_strides: vec![1, 2], dst_elems: 100, ..ok.clone() };
    assert!(compile_copy(&overlap, &target).is_err());
    let broadcast_dst = CopySpec { dst_strides: vec![0, 1], ..ok.clone() };
    assert!(compile_copy(&broadcast_dst, &target).is_err());
    assert!(CopySpec::transpose(&[3, 5], &[0, 0]).is_err());
    assert!(CopySpec::concat_part(&[2, 3], &[2, 5], 1, 3).is_err());
    assert!(CopySpec::expand(&[2, 3], &[3, 3]).is_err());
    let outside = SliceAxis { axis: 0, start: 1, step: -2, len: 2 };
    assert!(CopySpec::slice(&[4], &[outside]).is_err());
}

#[test]
fn empty_copies_write_nothing() {
    let spec = CopySpec::slice(&[4, 3], &[SliceAxis { axis: 1, start: 0, step: 1, len: 0 }]).unwrap();
    assert_eq!(spec.dst_elems, 0);
    let out = run(&spec, &values(12, 1), 3).unwrap();
    assert!(out.is_empty());
}
