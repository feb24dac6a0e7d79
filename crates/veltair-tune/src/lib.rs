//! Tuning for the veltair compiler: an interference stressor that reproduces contention on the
//! shared last-level cache and memory bandwidth ([`stress`](mod@stress)); robust timing and calibration of
//! contention levels against a reference workload ([`measure`](mod@measure)); measuring every version of
//! every layer of a plan at every width and level ([`explore`](mod@explore)); keeping each layer's frontier
//! ([`select`](mod@select)); the compile report and variant sets ([`report`](mod@report)); and comparing the variant
//! sets of two builds ([`compare`](mod@compare)).
#![forbid(unsafe_code)]

pub mod compare;
pub mod explore;
pub mod measure;
pub mod report;
pub mod select;
pub mod stress;

pub use compare::{compare, render_json, render_markdown, render_text, CompareOptions, Comparison};
pub use explore::{explore, ExploreConfig, ExploreError, Measurements};
pub use measure::{calibrate, median_time, robust_median, Calibration, LevelCalibration, Timing};
pub use report::{
    CandidateReport, Cell, LayerReport, LayerVariants, LevelReport, PhaseTimes, Report, Switch, VariantSet, Winner,
};
pub use select::{select, winners};
pub use stress::{level_config, StressConfig, StressError, Stressor};
