//! The loader's refusals and its call checks, on a hand-written kernel (`ret`).

use veltair_load::{ArgRef, LoadError, LoadedKernel, MachineCode, Team};

/// x86-64 `ret`: a kernel that touches nothing.
fn ret_kernel(arg_elems: Vec<usize>, features: &[&str]) -> MachineCode {
    MachineCode {
        bytes: vec![0xC3],
        alignment: 16,
        arg_elems,
        max_threads: 2,
        features: features.iter().map(|f| f.to_string()).collect(),
    }
}

#[test]
fn refuses_code_needing_features_the_host_lacks() {
    let err = LoadedKernel::load(&ret_kernel(vec![], &["sse3", "no-such-feature"])).err().unwrap();
    assert!(matches!(&err, LoadError::MissingFeatures(m) if m == &["no-such-feature".to_string()]));
    assert!(err.to_string().contains("lacks features the code needs: no-such-feature"), "{err}");
}

#[test]
fn refuses_bad_alignment_and_empty_code() {
    let mut code = ret_kernel(vec![], &[]);
    code.alignment = 24;
    assert!(matches!(LoadedKernel::load(&code), Err(LoadError::Map(_))));
    code.alignment = 16;
    code.bytes.clear();
    assert!(matches!(LoadedKernel::load(&code), Err(LoadError::Map(_))));
}

#[test]
fn checks_arguments_before_calling() {
    let kernel = LoadedKernel::load(&ret_kernel(vec![8, 4], &[])).unwrap();
    let mut arena = vec![0f32; 32];
    let constants = [vec![0f32; 4]];
    let ok = [ArgRef::Arena { offset: 0, len: 8 }, ArgRef::Const(0)];
    kernel.run_in(&mut arena, &constants[..], &ok, Team::Scoped(2)).unwrap();
    let cases: [(&[ArgRef], Team); 6] = [
        (&[ArgRef::Arena { offset: 0, len: 8 }], Team::Scoped(1)),
        (&[ArgRef::Arena { offset: 0, len: 7 }, ArgRef::Const(0)], Team::Scoped(1)),
        (&[ArgRef::Arena { offset: 30, len: 8 }, ArgRef::Const(0)], Team::Scoped(1)),
        (&[ArgRef::Arena { offset: 0, len: 8 }, ArgRef::Const(1)], Team::Scoped(1)),
        (&[ArgRef::Arena { offset: 0, len: 8 }, ArgRef::Arena { offset: 4, len: 8 }], Team::Scoped(1)),
        (&ok, Team::Scoped(3)),
    ];
    let expected = ["Arity", "ShortBuffer", "OutsideArena", "MissingConstant", "Overlap", "TooManyThreads"];
    for ((args, team), want) in cases.into_iter().zip(expected) {
        let err = kernel.run_in(&mut arena, &constants[..], args, team).err().unwrap();
        assert!(format!("{err:?}").starts_with(want), "{want}: {err:?}");
    }
}
