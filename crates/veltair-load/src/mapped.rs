//! The only unsafe code in veltair: mapping files and generated machine code, and calling that
//! code.
//!
//! Invariants this module relies on (established by the code generators and the bundle
//! validator, and checked here where possible):
//! 1. Kernel bytes are relocation-free (the code generator refuses any relocation): position
//!    independent, calling nothing outside themselves, their constant pool RIP-relative inside
//!    the same bytes. Bundle bytes are the same bytes, validated by checksum before loading.
//! 2. Every kernel has the signature `extern "C" fn(*const *mut u8, i64, i64)` and touches
//!    memory only through its argument table, within `MachineCode::arg_elems[i]` f32 elements
//!    of entry `i`, as long as it runs on at most `MachineCode::max_threads` threads
//!    (per-thread scratch is sized for that). `run` and `run_in` check both before calling.
//! 3. Calls with different `thread_index` values write disjoint parts of the outputs (the
//!    generators partition the parallel loop by thread index), so concurrent calls on the same
//!    buffers do not race.
//! 4. Kernels never write the arguments that hold constants (packed weights, biases): their
//!    outputs and scratch are always activation buffers.
//! 5. A mapped file is not modified or truncated while mapped (bundles are deployed like shared
//!    libraries: written to a new file and renamed into place, never rewritten in place).
//! 6. The code uses only CPU features the host has: `LoadedKernel::load` checks
//!    `MachineCode::features` before mapping anything executable.
//! 7. A closure lent to the crew's threads (`lend`) is used only by jobs that `Crew::run`
//!    posts, and `Crew::run` returns only after every one of them has finished.

use crate::{missing_features, ConstantTable, Crew, LoadError, MachineCode};
use memmap2::{Mmap, MmapMut};
use std::fs::File;
use std::path::Path;

type KernelFn = unsafe extern "C" fn(*const *mut u8, i64, i64);

/// A kernel mapped read+exec in this process.
pub struct LoadedKernel {
    /// Owns the executable mapping; dropping it would unmap `entry`.
    _code: Mmap,
    entry: KernelFn,
    arg_elems: Vec<usize>,
    max_threads: usize,
}

impl LoadedKernel {
    /// Copies `code` into a fresh page-aligned mapping and makes it read+exec (never writable
    /// and executable at once).
    pub fn load(code: &MachineCode) -> Result<LoadedKernel, LoadError> {
        let missing = missing_features(&code.features);
        if !missing.is_empty() {
            return Err(LoadError::MissingFeatures(missing));
        }
        if code.bytes.is_empty() {
            return Err(LoadError::Map("empty code".into()));
        }
        if !code.alignment.is_power_of_two() || code.alignment > 4096 {
            return Err(LoadError::Map(format!("alignment {} is not a power of two up to a page", code.alignment)));
        }
        let mut map = MmapMut::map_anon(code.bytes.len()).map_err(|e| LoadError::Map(e.to_string()))?;
        map.copy_from_slice(&code.bytes);
        let map = map.make_exec().map_err(|e| LoadError::Map(e.to_string()))?;
        // SAFETY: the mapping starts on a page boundary (so at the code's alignment) and holds
        // exactly the kernel's bytes, read+exec: a function with the uniform kernel signature
        // (invariants 1, 2) that the host can execute (invariant 6, checked above).
        let entry = unsafe { std::mem::transmute::<*const u8, KernelFn>(map.as_ptr()) };
        Ok(LoadedKernel { _code: map, entry, arg_elems: code.arg_elems.clone(), max_threads: code.max_threads })
    }

    /// Runs the kernel on `threads` threads (thread indices 0..threads) over `args`, each of
    /// which must hold at least the elements the kernel declared.
    pub fn run(&self, args: &mut [&mut [f32]], threads: usize) -> Result<(), LoadError> {
        self.check_arity(args.len())?;
        for (i, (a, &need)) in args.iter().zip(&self.arg_elems).enumerate() {
            check_len(i, a.len(), need)?;
        }
        let table: Vec<usize> = args.iter_mut().map(|a| a.as_mut_ptr() as usize).collect();
        self.call(&table, Team::Scoped(threads.max(1)))
    }

    /// Runs the kernel over arguments that are regions of one activation `arena` or read-only
    /// `constants`, on the threads of `team`. Distinct arena regions must be disjoint or
    /// identical (identical regions are only ever read: a planner binds a kernel's outputs to
    /// regions live at the same time as its inputs, hence disjoint from them).
    pub fn run_in<T: ConstantTable + ?Sized>(
        &self,
        arena: &mut [f32],
        constants: &T,
        args: &[ArgRef],
        team: Team,
    ) -> Result<(), LoadError> {
        self.check_arity(args.len())?;
        let mut table = Vec::with_capacity(args.len());
        for (index, (arg, &need)) in args.iter().zip(&self.arg_elems).enumerate() {
            let ptr = match *arg {
                ArgRef::Arena { offset, len } => {
                    check_len(index, len, need)?;
                    if offset.checked_add(len).is_none_or(|end| end > arena.len()) {
                        return Err(LoadError::OutsideArena { index, offset, len, arena: arena.len() });
                    }
                    arena[offset..].as_mut_ptr() as usize
                }
                ArgRef::Const(constant) => {
                    let data = constants.constant(constant).ok_or(LoadError::MissingConstant { index, constant })?;
                    check_len(index, data.len(), need)?;
                    data.as_ptr() as usize
                }
            };
            table.push(ptr);
        }
        for (i, a) in args.iter().enumerate() {
            for b in &args[..i] {
                if let (ArgRef::Arena { offset: o1, len: l1 }, ArgRef::Arena { offset: o2, len: l2 }) = (a, b) {
                    let overlap = o1 < &(o2 + l2) && o2 < &(o1 + l1);
                    if overlap && (o1, l1) != (o2, l2) {
                        return Err(LoadError::Overlap(i));
                    }
                }
            }
        }
        self.call(&table, team)
    }

    /// Most threads the kernel may run on.
    pub fn max_threads(&self) -> usize {
        self.max_threads
    }

    fn check_arity(&self, given: usize) -> Result<(), LoadError> {
        if given != self.arg_elems.len() {
            return Err(LoadError::Arity { given, takes: self.arg_elems.len() });
        }
        Ok(())
    }

    /// Calls the kernel once per thread of `team` over a checked pointer table.
    fn call(&self, table: &[usize], team: Team) -> Result<(), LoadError> {
        let threads = team.width();
        if threads > self.max_threads {
            return Err(LoadError::TooManyThreads { threads, max: self.max_threads });
        }
        let call = |t: usize| {
            // SAFETY: every table entry points to a live buffer at least as long as the kernel
            // accesses (checked by the callers, invariant 2); concurrent calls write disjoint
            // regions (invariant 3); constants are never written (invariant 4); the buffers
            // outlive this function, which returns only after every call has finished.
            unsafe { (self.entry)(table.as_ptr() as *const *mut u8, t as i64, threads as i64) }
        };
        match team {
            Team::Scoped(1) | Team::Pool(None) => call(0),
            Team::Scoped(_) => std::thread::scope(|s| {
                for t in 1..threads {
                    s.spawn(move || call(t));
                }
                call(0);
            }),
            Team::Pool(Some(pool)) => {
                pool.broadcast(|ctx| call(ctx.index()));
            }
            Team::Crew(crew, cores) => crew.run(cores, &call),
        }
        Ok(())
    }
}

/// Where one argument-table entry points: a region of the activation arena or a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgRef {
    Arena { offset: usize, len: usize },
    Const(usize),
}

/// The threads a kernel runs on.
#[derive(Clone, Copy)]
pub enum Team<'a> {
    /// This many scoped threads, spawned for the call (tests and one-off runs).
    Scoped(usize),
    /// Every thread of a persistent pool, or only the calling thread (`None`).
    Pool(Option<&'a rayon::ThreadPool>),
    /// The crew's workers on these cores (thread index `t` on `cores[t]`, index 0 on the
    /// calling thread).
    Crew(&'a Crew, &'a [usize]),
}

impl Team<'_> {
    /// Threads the kernel runs on.
    pub fn width(&self) -> usize {
        match self {
            Team::Scoped(n) => (*n).max(1),
            Team::Pool(None) => 1,
            Team::Pool(Some(p)) => p.current_num_threads(),
            Team::Crew(_, cores) => cores.len().max(1),
        }
    }
}

fn check_len(index: usize, have: usize, need: usize) -> Result<(), LoadError> {
    if have < need {
        return Err(LoadError::ShortBuffer { index, have, need });
    }
    Ok(())
}

/// A closure lent to the crew's threads for the duration of one `Crew::run`.
#[derive(Clone, Copy)]
pub(crate) struct Lent(&'static (dyn Fn(usize) + Sync));

impl Lent {
    pub(crate) fn call(&self, index: usize) {
        (self.0)(index)
    }
}

/// Lends `f` to other threads (invariant 7: only `Crew::run` calls this, and it outlives every
/// use of the result).
pub(crate) fn lend(f: &(dyn Fn(usize) + Sync)) -> Lent {
    // SAFETY: extends the borrow's lifetime only; `Crew::run` keeps `f` alive until every job
    // holding the returned value has finished (invariant 7), and `f` is `Sync`, so calling it
    // from several threads at once is allowed.
    Lent(unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f) })
}

/// A whole file mapped read-only (bundles are read zero-copy through it).
pub struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    pub fn open(path: &Path) -> std::io::Result<MappedFile> {
        let file = File::open(path)?;
        // SAFETY: the mapping is read-only and the file is not modified while mapped
        // (invariant 5); every read of it is bounds-checked slice access.
        let map = unsafe { Mmap::map(&file)? };
        Ok(MappedFile { map })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

/// Measures nothing itself: runs `iters` rounds of 12 independent 256-bit FMAs (the width
/// onnxruntime's kernels use, which Cranelift cannot emit) and returns a value that depends on
/// them. Time it to get the 256-bit FMA peak; `None` when the host lacks AVX2/FMA.
pub fn fma_peak_256(iters: u64) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features the function is compiled for were just detected.
            return Some(unsafe { fma256_loop(iters) });
        }
    }
    let _ = iters;
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma256_loop(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let x = _mm256_set1_ps(1.0);
    let y = _mm256_set1_ps(1e-7);
    let mut acc = [x; 12];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, x, y);
        }
    }
    let mut sum = _mm256_setzero_ps();
    for a in acc {
        sum = _mm256_add_ps(sum, a);
    }
    _mm256_cvtss_f32(sum)
}
