//! The non-linearity of a projection kind (`shaders/project_finish.wgsl`), in place on the
//! accumulated linear part: |·|² for the optical kind, cos for random Fourier features, ReLU
//! and exp for random ReLU and positive features; and a [`Camera`] recording the optical
//! kind's intensity (gain, shot noise, quantization).

use crate::cpu::philox;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu};
use crate::shaders;
use crate::tensor::{window_capacity, Tensor, Window};
use std::fmt;

/// Which non-linearity. Keep the codes in sync with KIND in `shaders/project_finish.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Finish {
    /// y = re² + im².
    Optical,
    /// y = out_scale · cos(re + 2π u_i), u_i from Philox (stream `RowOffset`, row i).
    Fourier,
    /// y = out_scale · max(re, 0).
    Relu,
    /// y = out_scale · exp(re − ‖x_b‖²/2).
    Positive,
}

impl Finish {
    fn code(self) -> u32 {
        match self {
            Finish::Optical => 1,
            Finish::Fourier => 2,
            Finish::Relu => 3,
            Finish::Positive => 4,
        }
    }
}

/// KIND of the camera model in `shaders/project_finish.wgsl` (after the [`Finish`] codes).
const KIND_CAMERA: u32 = 5;

/// The largest camera bit depth: 2¹⁶ − 1 levels are exact in f32 with room to spare, and
/// scientific cameras record 8 to 16 bits.
pub const MAX_CAMERA_BITS: u32 = 16;

/// A camera recording the optical kind's intensity y = |R x|² ≥ 0 (so E\[yᵢ\] = ‖x‖² for unit
/// variance R), as the sensor of an optical processing unit does. Applied in place by
/// [`plan_camera`]; the f64 reference is [`crate::cpu::project_finish::camera`].
///
/// The model, per output (batch row b, column i):
/// - λ = gain · max(y, 0): the expected number of photo-electrons;
/// - with `noise = Some(seed)`, shot noise by the Gaussian approximation of Poisson(λ):
///   v = λ + √λ · z, z the standard Gaussian entry (b, i) of Philox stream
///   [`Stream::CameraNoise`](crate::cpu::philox::Stream::CameraNoise) under `seed`, so every
///   frame (batch row) gets fresh noise and a rerun with the same seed is identical; without
///   noise v = λ;
/// - quantization saturating at the bit depth: out = clamp(⌊v + 0.5⌋, 0, 2^bits − 1).
///
/// The CLI syntax is `gain=G,bits=B,noise=SEED`, every key optional ([`Camera::parse`],
/// [`Display`](fmt::Display)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// Photo-electrons per unit of intensity; finite and > 0.
    pub gain: f32,
    /// Bit depth of the quantizer, 1..=16: outputs are integers in [0, 2^bits − 1].
    pub bits: u32,
    /// The shot-noise seed; `None` for a noiseless camera.
    pub noise: Option<u64>,
}

impl Default for Camera {
    /// Gain 1, 8 bits, no noise.
    fn default() -> Self {
        Camera {
            gain: 1.0,
            bits: 8,
            noise: None,
        }
    }
}

impl Camera {
    /// The keys of [`Camera::parse`].
    pub const KEYS: &'static [&'static str] = &["gain", "bits", "noise"];

    /// Parses the CLI syntax `gain=G,bits=B,noise=SEED`: comma-separated `key=value` parts
    /// in any order, every key optional (defaults: [`Camera::default`]); an empty spec is the
    /// default camera. Errors name the offending part.
    pub fn parse(spec: &str) -> Result<Camera> {
        let mut camera = Camera::default();
        if spec.trim().is_empty() {
            return Ok(camera);
        }
        let mut seen: Vec<&str> = Vec::new();
        for part in spec.split(',') {
            let part = part.trim();
            let bad =
                |why: String| Error::invalid(format!("camera spec {spec:?}: part {part:?} {why}"));
            let Some((key, value)) = part.split_once('=') else {
                return Err(bad(format!(
                    "is not key=value (keys: {})",
                    Camera::KEYS.join(", ")
                )));
            };
            let (key, value) = (key.trim(), value.trim());
            if !Camera::KEYS.contains(&key) {
                return Err(bad(format!(
                    "has an unknown key {key:?}; known: {}",
                    Camera::KEYS.join(", ")
                )));
            }
            if seen.contains(&key) {
                return Err(bad(format!("repeats the key {key:?}")));
            }
            seen.push(key);
            match key {
                "gain" => {
                    camera.gain = value
                        .parse()
                        .map_err(|_| bad(format!("has a gain {value:?} that is not a number")))?
                }
                "bits" => {
                    camera.bits = value.parse().map_err(|_| {
                        bad(format!("has bits {value:?} that is not a whole number"))
                    })?
                }
                _ => {
                    camera.noise = Some(value.parse().map_err(|_| {
                        bad(format!(
                            "has a noise seed {value:?} that is not a whole number in 0..=2^64-1"
                        ))
                    })?)
                }
            }
        }
        camera
            .validate()
            .map_err(|e| e.in_context(format!("camera spec {spec:?}")))?;
        Ok(camera)
    }

    /// Checks the parameters (the fields are public, so a hand-built camera may be invalid).
    pub fn validate(&self) -> Result<()> {
        if !(self.gain.is_finite() && self.gain > 0.0) {
            return Err(Error::invalid(format!(
                "camera gain must be finite and > 0, got {}",
                self.gain
            )));
        }
        if !(1..=MAX_CAMERA_BITS).contains(&self.bits) {
            return Err(Error::invalid(format!(
                "camera bits must be in 1..={MAX_CAMERA_BITS}, got {}",
                self.bits
            )));
        }
        Ok(())
    }

    /// The largest output, 2^bits − 1 (the saturation level).
    pub fn max_level(&self) -> u32 {
        (1u32 << self.bits.min(31)) - 1
    }
}

impl fmt::Display for Camera {
    /// The syntax of [`Camera::parse`]: `gain=G,bits=B` and `,noise=SEED` with noise.
    /// f32's `Display` is the shortest text that parses back to the same value, so
    /// `Camera::parse(&camera.to_string())` gives `camera` back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gain={},bits={}", self.gain, self.bits)?;
        if let Some(seed) = self.noise {
            write!(f, ",noise={seed}")?;
        }
        Ok(())
    }
}

/// Uniform parameters of `shaders/project_finish.wgsl`. Keep in sync with `Params` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ProjectFinishParams {
    len: u32,
    e0: u32,
    n_out: u32,
    re_first: u32,
    im_first: u32,
    key_lo: u32,
    key_hi: u32,
    out_scale: f32,
    gain: f32,
    max_level: f32,
    noise: u32,
    _pad: u32,
}

const WG: u32 = 256;

/// Plans `finish` in place on `re` (`[batch, n_out]`); `im` (same shape) for the optical
/// kind, `norms` (‖x_b‖², `[batch]`) for positive features.
pub fn plan(
    gpu: &Gpu,
    finish: Finish,
    re: &Tensor,
    im: Option<&Tensor>,
    norms: Option<&Tensor>,
    seed: u64,
    out_scale: f32,
) -> Result<Vec<Dispatch>> {
    let n_out = re.shape()[re.shape().len() - 1];
    let needs_im = finish == Finish::Optical;
    let needs_norms = finish == Finish::Positive;
    if needs_im != im.is_some()
        || needs_norms != norms.is_some()
        || im.is_some_and(|t| t.len() != re.len())
    {
        return Err(Error::invalid(format!(
            "projection finish {finish:?}: wrong auxiliary inputs"
        )));
    }
    if re.len() > u32::MAX as usize {
        return Err(Error::invalid("projection output exceeds u32 indices"));
    }
    let key = philox::key(seed);
    let params = ProjectFinishParams {
        len: 0,
        e0: 0,
        n_out: n_out as u32,
        re_first: 0,
        im_first: 0,
        key_lo: key[0],
        key_hi: key[1],
        out_scale,
        gain: 0.0,
        max_level: 0.0,
        noise: 0,
        _pad: 0,
    };
    record(gpu, finish.code(), re, im, norms, params)
}

/// Plans the [`Camera`] model in place on the optical intensity `y` (`[batch, n_out]`, or
/// `[n_out]` for one frame): y becomes integer counts in [0, 2^bits − 1].
pub fn plan_camera(gpu: &Gpu, y: &Tensor, camera: &Camera) -> Result<Vec<Dispatch>> {
    camera.validate()?;
    if y.len() > u32::MAX as usize {
        return Err(Error::invalid(format!(
            "camera: {:?} has {} elements; flat indices must fit in u32",
            y.shape(),
            y.len()
        )));
    }
    let key = philox::key(camera.noise.unwrap_or(0));
    let params = ProjectFinishParams {
        len: 0,
        e0: 0,
        n_out: y.shape()[y.shape().len() - 1] as u32,
        re_first: 0,
        im_first: 0,
        key_lo: key[0],
        key_hi: key[1],
        out_scale: 1.0,
        gain: camera.gain,
        // 2^bits − 1 <= 65535 is exact in f32.
        max_level: camera.max_level() as f32,
        noise: u32::from(camera.noise.is_some()),
        _pad: 0,
    };
    record(gpu, KIND_CAMERA, y, None, None, params)
}

/// Records `kind` in place on `re` in windows of at most one binding (and one grid) each;
/// `template` holds the parameters common to all windows.
fn record(
    gpu: &Gpu,
    kind: u32,
    re: &Tensor,
    im: Option<&Tensor>,
    norms: Option<&Tensor>,
    template: ProjectFinishParams,
) -> Result<Vec<Dispatch>> {
    let pipeline = gpu.pipeline(
        &shaders::PROJECT_FINISH,
        &[("KIND", f64::from(kind)), ("WG", f64::from(WG))],
    )?;
    let chunk = window_capacity(gpu).min(gpu.max_grid() * WG as usize);
    let mut dispatches = Vec::new();
    for e0 in (0..re.len()).step_by(chunk) {
        let len = chunk.min(re.len() - e0);
        let re_w = re.window(gpu, e0, len);
        let im_w = im.map(|t| t.window(gpu, e0, len));
        let params = ProjectFinishParams {
            len: len as u32,
            e0: e0 as u32,
            re_first: re_w.first,
            im_first: im_w.as_ref().map_or(0, |w| w.first),
            ..template
        };
        let uniform = gpu.uniform("speckle.project_finish.params", &params);
        let im_resource = Window::or_placeholder(im_w.as_ref(), gpu);
        let norms_resource = match norms {
            Some(t) => t.buffer().as_entire_binding(),
            None => gpu.placeholder().as_entire_binding(),
        };
        let bind_group = gpu.bind_group(
            &pipeline,
            &[
                uniform.as_entire_binding(),
                re_w.resource(),
                im_resource,
                norms_resource,
            ],
        );
        dispatches.push(Dispatch::kernel(
            pipeline.clone(),
            bind_group,
            gpu.grid((len as u32).div_ceil(WG)),
        ));
    }
    Ok(dispatches)
}
