//! [`Gpu`]: the one owner of device state (adapter info, device, queue, limits, features and
//! the pipeline cache). Library functions take `&Gpu`; nothing is global.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::shaders::Kernel;
use crate::tune::{ShapeClass, TuneTable, TunedEntry, Tuning};

/// Optional features speckle uses when the adapter has them. Each has a portable fallback.
/// `EXPERIMENTAL_COOPERATIVE_MATRIX` (tensor cores) is requested with `SHADER_F16` only:
/// speckle's cooperative-matrix kernel takes f16 operands.
const OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);

/// How to choose and open the device. `Default` picks the best adapter, honouring the
/// `SPECKLE_ADAPTER` environment variable.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use the first adapter (best first) whose name contains this, case-insensitively.
    /// `None` reads `SPECKLE_ADAPTER`, then wgpu's `WGPU_ADAPTER_NAME`.
    pub adapter: Option<String>,
    /// Lower the largest storage binding the host will create (bytes). Problems larger than
    /// one binding are split into chunks; tests lower this to exercise that path cheaply.
    /// `None` uses the adapter's `max_storage_buffer_binding_size`.
    pub max_binding_bytes: Option<u64>,
    /// Lower the loop iterations the host lets one invocation run (see [`Gpu::loop_limit`]):
    /// kernels then split their work or refuse it sooner; tests lower this to exercise those
    /// paths with small problems on any adapter. `None` uses what the adapter allows.
    pub max_loop_iterations: Option<u64>,
    /// Where tuned kernel configurations come from (`speckle tune` writes them): the user's
    /// cache file by default; tests use [`Tuning::Off`] to run the fixed built-in ones.
    pub tuning: Tuning,
}

/// What `speckle info` reports about one adapter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    /// Adapter name as the driver reports it.
    pub name: String,
    /// Graphics API: vulkan, metal, dx12, gl.
    pub backend: String,
    /// discrete, integrated, virtual, cpu or other.
    pub device_type: String,
    /// Driver name.
    pub driver: String,
    /// Driver version string.
    pub driver_info: String,
    /// PCI vendor id.
    pub vendor: u32,
    /// PCI device id.
    pub device: u32,
}

impl AdapterSummary {
    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            backend: info.backend.to_str().to_owned(),
            device_type: device_type_name(info.device_type).to_owned(),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            vendor: info.vendor,
            device: info.device,
        }
    }
}

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// Rank used to pick the best adapter: lower is better. Discrete > integrated > virtual > CPU;
/// among equals, native APIs before OpenGL (whose compute support is the weakest).
fn adapter_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, api)
}

/// Pipeline cache key: kernel, entry point and the override constants (as f64 bit patterns,
/// so the key is `Eq + Hash`).
type PipelineKey = (&'static str, &'static str, Vec<(&'static str, u64)>);

/// One step of planned GPU work, ready to record: a compute dispatch (pipeline, bound
/// resources and grid size), or a copy from a buffer into a texture layer.
/// An operation is planned as a list of these (several when the problem is split into chunks),
/// so that callers can record it repeatedly (benchmarks) or together with other work.
#[derive(Debug)]
pub struct Dispatch {
    pub(crate) work: Work,
}

/// What a [`Dispatch`] does.
#[derive(Debug)]
pub(crate) enum Work {
    /// A compute dispatch of `workgroups` workgroups.
    Kernel {
        pipeline: Arc<wgpu::ComputePipeline>,
        bind_group: wgpu::BindGroup,
        workgroups: [u32; 3],
    },
    /// A buffer-to-texture copy (recorded between compute passes).
    CopyToTexture(TextureCopy),
}

/// `size[1]` rows of `size[0]` texels from `buffer` (rows `bytes_per_row` bytes apart from
/// byte `offset`) into `layers` layers of `texture` from layer `layer`, from texel row `row`
/// on; the layers' rows follow each other in the buffer, `size[1]` rows apart. The planner
/// has checked wgpu's copy rules: `offset` a multiple of the format's block size,
/// `bytes_per_row` of 256, and the texture created with `COPY_DST`.
#[derive(Debug)]
pub(crate) struct TextureCopy {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) offset: u64,
    pub(crate) bytes_per_row: u32,
    pub(crate) texture: wgpu::Texture,
    pub(crate) layer: u32,
    pub(crate) layers: u32,
    pub(crate) row: u32,
    pub(crate) size: [u32; 2],
}

impl Dispatch {
    /// A compute dispatch of `workgroups` workgroups of `pipeline` with `bind_group`.
    pub(crate) fn kernel(
        pipeline: Arc<wgpu::ComputePipeline>,
        bind_group: wgpu::BindGroup,
        workgroups: [u32; 3],
    ) -> Dispatch {
        Dispatch {
            work: Work::Kernel {
                pipeline,
                bind_group,
                workgroups,
            },
        }
    }

    /// True for a buffer-to-texture copy, false for a compute dispatch.
    pub fn is_copy(&self) -> bool {
        matches!(self.work, Work::CopyToTexture(_))
    }

    /// The number of workgroups along x, y and z; zero for a copy.
    pub fn workgroups(&self) -> [u32; 3] {
        match &self.work {
            Work::Kernel { workgroups, .. } => *workgroups,
            Work::CopyToTexture(_) => [0; 3],
        }
    }
}

/// Timestamp queries to write around work recorded by [`Gpu::encode`]: query `begin` of
/// `queries` before its first step, `end` after its last.
pub struct Bracket<'a> {
    /// A timestamp query set.
    pub queries: &'a wgpu::QuerySet,
    /// The query written before the first step.
    pub begin: u32,
    /// The query written after the last step.
    pub end: u32,
}

/// Errors reported by wgpu outside any error scope, and the device-lost reason.
#[derive(Default)]
struct DeviceHealth {
    uncaptured: Vec<String>,
    lost: Option<String>,
}

/// The next [`Gpu::id`].
static NEXT_GPU_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The GPU context: adapter, device, queue, limits, features and the pipeline cache.
pub struct Gpu {
    info: wgpu::AdapterInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    limits: wgpu::Limits,
    features: wgpu::Features,
    binding_limit: u64,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    health: Arc<Mutex<DeviceHealth>>,
    /// Tuned configurations of this adapter (see [`crate::tune`]).
    tuned: Mutex<TuneTable>,
    /// Set once a timing showed that the adapter's timestamps do not bracket the work.
    timestamps_unreliable: std::sync::atomic::AtomicBool,
    /// A small buffer bound where a kernel's optional input is absent.
    placeholder: wgpu::Buffer,
    /// A small buffer bound where a kernel's optional read-write output is unused.
    unused_output: wgpu::Buffer,
    /// The cooperative-matrix configurations the adapter reports (empty without the feature).
    cooperative: Vec<wgpu::CooperativeMatrixProperties>,
    /// Unique within the process (see [`Gpu::id`]).
    id: u64,
    /// [`GpuOptions::max_loop_iterations`].
    max_loop_iterations: Option<u64>,
    /// The probed loop limit, once measured (see [`Gpu::loop_limit`]).
    loop_limit: Mutex<Option<Option<u64>>>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .finish_non_exhaustive()
    }
}

/// The backends searched: Vulkan, Metal and DirectX 12 (wgpu's primary ones), unless
/// `WGPU_BACKEND` names others (e.g. `gl`).
fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

fn instance() -> wgpu::Instance {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    descriptor.backends = backends();
    wgpu::Instance::new(descriptor)
}

/// All adapters wgpu can see on [`backends`], best first.
fn sorted_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends()));
    adapters.sort_by_key(|a| adapter_rank(&a.get_info()));
    adapters
}

impl Gpu {
    /// Opens the best adapter (discrete > integrated > CPU), or the one named by
    /// `SPECKLE_ADAPTER` (a case-insensitive name substring).
    pub fn new() -> Result<Gpu> {
        Gpu::with_options(&GpuOptions::default())
    }

    /// Opens a device as `options` say.
    pub fn with_options(options: &GpuOptions) -> Result<Gpu> {
        let instance = instance();
        let adapters = sorted_adapters(&instance);
        if adapters.is_empty() {
            return Err(Error::NoAdapter {
                detail: format!(" (wgpu enumerated no adapter on backends {:?})", backends()),
            });
        }
        let wanted = match &options.adapter {
            Some(name) => Some((name.clone(), "GpuOptions::adapter")),
            None => std::env::var("SPECKLE_ADAPTER")
                .ok()
                .filter(|s| !s.is_empty())
                .map(|s| (s, "SPECKLE_ADAPTER"))
                .or_else(|| {
                    std::env::var("WGPU_ADAPTER_NAME")
                        .ok()
                        .filter(|s| !s.is_empty())
                        .map(|s| (s, "WGPU_ADAPTER_NAME"))
                }),
        };
        let adapter = match wanted {
            None => adapters.into_iter().next(),
            Some((name, source_name)) => {
                let needle = name.to_lowercase();
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                let found = adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&needle));
                if found.is_none() {
                    return Err(Error::AdapterNotFound {
                        wanted: name,
                        source_name: source_name.into(),
                        available: names.join(", "),
                    });
                }
                found
            }
        }
        .ok_or_else(|| Error::NoAdapter {
            detail: String::new(),
        })?;
        Gpu::open(&adapter, options)
    }

    fn open(adapter: &wgpu::Adapter, options: &GpuOptions) -> Result<Gpu> {
        let info = adapter.get_info();
        let mut required_features = adapter.features() & OPTIONAL_FEATURES;
        if !required_features.contains(wgpu::Features::SHADER_F16) {
            required_features.remove(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        }
        let cooperative =
            required_features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("speckle"),
            required_features,
            // The adapter's own limits: storage bindings and workgroup memory as large as the
            // hardware allows, not WebGPU's portable defaults.
            required_limits: adapter.limits(),
            experimental_features: if cooperative {
                // SAFETY: wgpu asks callers of its experimental features to accept that their
                // implementation may still have bugs. Only the cooperative-matrix kernel uses
                // one, on adapters that report it, and its results are checked against the f64
                // reference in tests/matmul_coop.rs on such adapters.
                unsafe { wgpu::ExperimentalFeatures::enabled() }
            } else {
                wgpu::ExperimentalFeatures::disabled()
            },
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&descriptor)).map_err(|e| {
                Error::RequestDevice {
                    adapter: info.name.clone(),
                    message: e.to_string(),
                }
            })?;
        let mut gpu = Gpu::from_parts(info, device, queue, options);
        if cooperative {
            gpu.cooperative = adapter.cooperative_matrix_properties();
        }
        Ok(gpu)
    }

    /// Wraps a device the caller created. `adapter` must be the adapter `device` came from.
    /// speckle uses only the features and limits the device was created with.
    pub fn from_wgpu(adapter: &wgpu::Adapter, device: wgpu::Device, queue: wgpu::Queue) -> Gpu {
        let mut gpu = Gpu::from_parts(adapter.get_info(), device, queue, &GpuOptions::default());
        let coop = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16;
        if gpu.features.contains(coop) {
            gpu.cooperative = adapter.cooperative_matrix_properties();
        }
        gpu
    }

    fn from_parts(
        info: wgpu::AdapterInfo,
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: &GpuOptions,
    ) -> Gpu {
        let limits = device.limits();
        let features = device.features();
        let health = Arc::new(Mutex::new(DeviceHealth::default()));
        // wgpu panics on errors outside an error scope unless a handler is set: record them
        // instead and report them from the next `execute`/read-back as an `Error`.
        let sink = Arc::clone(&health);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("uncaptured GPU error: {e}");
            lock(&sink).uncaptured.push(e.to_string());
        }));
        let sink = Arc::clone(&health);
        device.set_device_lost_callback(move |reason, message| {
            lock(&sink).lost = Some(format!("{reason:?}: {message}"));
        });
        let adapter_binding_limit = limits.max_storage_buffer_binding_size;
        let binding_limit = options
            .max_binding_bytes
            .map_or(adapter_binding_limit, |b| b.min(adapter_binding_limit))
            // Room for at least a few elements past the alignment slack of a window.
            .max(4 * u64::from(limits.min_storage_buffer_offset_alignment).max(64))
            / 4
            * 4;
        let small = |label| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        let placeholder = small("speckle.placeholder");
        let unused_output = small("speckle.unused_output");
        let tuned =
            crate::tune::load_table(&options.tuning, &crate::tune::AdapterKey::from_info(&info));
        log::info!(
            "adapter {:?} ({:?}, {:?}), binding limit {} bytes",
            info.name,
            info.backend,
            info.device_type,
            binding_limit
        );
        Gpu {
            info,
            device,
            queue,
            limits,
            features,
            binding_limit,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            health,
            tuned: Mutex::new(tuned),
            timestamps_unreliable: std::sync::atomic::AtomicBool::new(false),
            placeholder,
            unused_output,
            cooperative: Vec::new(),
            id: NEXT_GPU_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            max_loop_iterations: options.max_loop_iterations,
            loop_limit: Mutex::new(None),
        }
    }

    /// A number no other `Gpu` of this process has: what caches of device resources key on.
    /// (`wgpu::Device` equality compares ids that two devices of separate instances can
    /// share.)
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Every adapter wgpu can see, best first (the first is the one [`Gpu::new`] picks when
    /// `SPECKLE_ADAPTER` is unset).
    pub fn adapters() -> Vec<AdapterSummary> {
        sorted_adapters(&instance())
            .iter()
            .map(|a| AdapterSummary::from_info(&a.get_info()))
            .collect()
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Raw adapter information.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Adapter summary as reported by `speckle info`.
    pub fn summary(&self) -> AdapterSummary {
        AdapterSummary::from_info(&self.info)
    }

    /// The device's limits (the adapter's own, as requested).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The optional features enabled on the device.
    pub fn features(&self) -> wgpu::Features {
        self.features
    }

    /// The cooperative-matrix (tensor-core) configurations the device may use: what the adapter
    /// reports when it has `EXPERIMENTAL_COOPERATIVE_MATRIX` and `SHADER_F16`, else none.
    pub fn cooperative_matrix_properties(&self) -> &[wgpu::CooperativeMatrixProperties] {
        &self.cooperative
    }

    /// True when the adapter is a CPU implementation (lavapipe, WARP, SwiftShader).
    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The largest storage binding (bytes) the host creates; larger problems are chunked.
    pub fn binding_limit(&self) -> u64 {
        self.binding_limit
    }

    /// Required alignment (bytes) of a storage binding's offset.
    pub fn binding_alignment(&self) -> u64 {
        u64::from(self.limits.min_storage_buffer_offset_alignment)
    }

    /// The configuration tuned for `op` on problems of `class` (or the nearest tuned class),
    /// in the op's notation; `None` when nothing applies (the op uses its default).
    pub fn tuned_config(&self, op: &str, class: &ShapeClass) -> Option<String> {
        lock(&self.tuned)
            .lookup(op, class)
            .map(|e| e.config.clone())
    }

    /// A copy of the tuned configurations this device uses.
    pub fn tune_table(&self) -> TuneTable {
        lock(&self.tuned).clone()
    }

    /// Uses `entry` from now on (`speckle tune` calls this after measuring it).
    pub fn remember_tuned(&self, entry: TunedEntry) {
        lock(&self.tuned).insert(entry);
    }

    /// Forgets the tuned configurations (of `op` only, when given): the defaults apply again.
    pub fn forget_tuned(&self, op: Option<&str>) {
        lock(&self.tuned).clear(op);
    }

    /// Whether benchmarks may time with GPU timestamps: the adapter has `TIMESTAMP_QUERY`, is
    /// not a CPU implementation, and no timing on this device found them failing to bracket
    /// the work (see [`crate::bench::timestamps_cover`]). CPU adapters are timed by the wall
    /// clock: lavapipe's timestamps are host clock reads that, once a texture has been bound,
    /// no longer wait for the last dispatch of a pass (too short to notice for sub-millisecond
    /// work, and a timing that cannot be trusted at one size is not used at any).
    pub fn timestamps_usable(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
            && !self.is_cpu()
            && !self
                .timestamps_unreliable
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records that timestamps failed to bracket the work; true the first time.
    pub(crate) fn distrust_timestamps(&self) -> bool {
        !self
            .timestamps_unreliable
            .swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    /// The loop iterations one invocation may run in all, counted over every loop of the
    /// shader and every pass through each: `None` where the adapter let a probe loop
    /// [`PROBE_ITERATIONS`](crate::ops::loop_limit::PROBE_ITERATIONS) times, else what it
    /// ran (65,535 on lavapipe, which leaves loops silently past that; see
    /// [`crate::ops::loop_limit`]), lowered to [`GpuOptions::max_loop_iterations`]. Probed on
    /// the first call, a few milliseconds once per device.
    pub fn loop_limit(&self) -> Result<Option<u64>> {
        let mut cached = lock(&self.loop_limit);
        let probed = match *cached {
            Some(limit) => limit,
            None => {
                let limit = crate::ops::loop_limit::probe(self)?;
                if let Some(l) = limit {
                    log::info!(
                        "adapter {:?} ends loops after {l} iterations",
                        self.info.name
                    );
                }
                *cached = Some(limit);
                limit
            }
        };
        Ok(match (probed, self.max_loop_iterations) {
            (Some(p), Some(o)) => Some(p.min(o)),
            (p, o) => p.or(o),
        })
    }

    /// Checks that no invocation of `kernel` loops more than [`Gpu::loop_limit`] allows, given
    /// `iterations`, an upper bound of the loop iterations of its busiest invocation. The
    /// error names the numbers and `remedy`, what the caller can change.
    pub(crate) fn check_loops(&self, kernel: &str, iterations: u64, remedy: &str) -> Result<()> {
        match self.loop_limit()? {
            Some(limit) if iterations > limit => Err(Error::LoopLimit {
                kernel: kernel.into(),
                iterations,
                limit,
                adapter: self.info.name.clone(),
                remedy: remedy.into(),
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn placeholder(&self) -> &wgpu::Buffer {
        &self.placeholder
    }

    /// The buffer bound where a kernel's optional read-write output is unused (never written
    /// then). Not the placeholder, which the same dispatch may bind read-only: wgpu refuses
    /// one buffer bound both ways in a dispatch.
    pub(crate) fn unused_output(&self) -> &wgpu::Buffer {
        &self.unused_output
    }

    /// The compute pipeline for `kernel`'s entry point `main` specialised by the override
    /// `constants`, compiled once and cached by (kernel, entry point, constants).
    pub fn pipeline(
        &self,
        kernel: &Kernel,
        constants: &[(&'static str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        self.pipeline_entry(kernel, "main", constants)
    }

    /// [`Gpu::pipeline`] for the entry point `entry`: for a kernel whose file holds more than
    /// one (say a vec4 form beside the scalar one), each with its own bindings.
    pub fn pipeline_entry(
        &self,
        kernel: &Kernel,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key: PipelineKey = (
            kernel.name,
            entry,
            constants.iter().map(|&(k, v)| (k, v.to_bits())).collect(),
        );
        if let Some(p) = lock(&self.pipelines).get(&key) {
            return Ok(Arc::clone(p));
        }
        let module = self.module(kernel)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&format!("speckle.{}.{entry}", kernel.name)),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: kernel.zero_workgroup_memory,
                },
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader {
                name: kernel.name.into(),
                message: format!(
                    "creating the pipeline of entry point {entry} with overrides {constants:?}: {e}"
                ),
            });
        }
        let pipeline = Arc::new(pipeline);
        lock(&self.pipelines).insert(key, Arc::clone(&pipeline));
        Ok(pipeline)
    }

    /// Number of pipelines compiled so far (each distinct kernel + constants once).
    pub fn cached_pipelines(&self) -> usize {
        lock(&self.pipelines).len()
    }

    fn module(&self, kernel: &Kernel) -> Result<wgpu::ShaderModule> {
        if let Some(m) = lock(&self.modules).get(kernel.name) {
            return Ok(m.clone());
        }
        // naga's own diagnostics carry source locations; check first so a WGSL error reads well.
        crate::shaders::validate(kernel)?;
        let source = kernel.source();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some(&format!("speckle.{}", kernel.name)),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let module = if kernel.trusted {
            // SAFETY: `Kernel::trusted` is set only for kernels whose indices, loops and
            // divisors are bounded as its documentation requires (audited in each shader's
            // header), with parameters the host derives from the bound operands.
            unsafe {
                self.device.create_shader_module_trusted(
                    descriptor,
                    wgpu::ShaderRuntimeChecks::unchecked(),
                )
            }
        } else {
            self.device.create_shader_module(descriptor)
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader {
                name: kernel.name.into(),
                message: e.to_string(),
            });
        }
        lock(&self.modules).insert(kernel.name, module.clone());
        Ok(module)
    }

    /// A uniform buffer holding `value`.
    pub(crate) fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// A bind group for group 0 of `pipeline`, binding `resources` at 0, 1, 2, ...
    pub(crate) fn bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        resources: &[wgpu::BindingResource<'_>],
    ) -> wgpu::BindGroup {
        let numbered: Vec<(u32, wgpu::BindingResource<'_>)> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, r.clone()))
            .collect();
        self.bind_group_at(pipeline, &numbered)
    }

    /// A bind group for group 0 of `pipeline` with each resource at its binding number: for an
    /// entry point that uses only some of its shader's bindings.
    pub(crate) fn bind_group_at(
        &self,
        pipeline: &wgpu::ComputePipeline,
        resources: &[(u32, wgpu::BindingResource<'_>)],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = resources
            .iter()
            .map(|(binding, resource)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: resource.clone(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Splits `total` workgroups into a grid that respects `max_compute_workgroups_per_dimension`.
    /// Kernels linearize it back as `id.x + id.y * num_workgroups.x` and skip ids ≥ `total`.
    pub(crate) fn grid(&self, total: u32) -> [u32; 3] {
        let max = self.limits.max_compute_workgroups_per_dimension.max(1);
        if total <= max {
            [total.max(1), 1, 1]
        } else {
            [max, total.div_ceil(max), 1]
        }
    }

    /// The most workgroups one dispatch split by [`Gpu::grid`] can hold.
    pub(crate) fn max_grid(&self) -> usize {
        let m = self.limits.max_compute_workgroups_per_dimension as usize;
        m * m
    }

    /// Records `dispatches`, in order, into `encoder`: each run of consecutive kernels in one
    /// compute pass, copies between passes. With `bracket`, its timestamps are written at the
    /// start of the first pass and the end of the last; an empty pass carries one where the
    /// work starts or ends with a copy, so copies are always inside the bracket.
    pub fn encode<'d>(
        encoder: &mut wgpu::CommandEncoder,
        dispatches: impl IntoIterator<Item = &'d Dispatch>,
        bracket: Option<&Bracket<'_>>,
    ) {
        let dispatches: Vec<&Dispatch> = dispatches.into_iter().collect();
        let mut k = 0;
        let mut first = true;
        loop {
            let kernels = dispatches[k..]
                .iter()
                .take_while(|d| matches!(d.work, Work::Kernel { .. }))
                .count();
            let last = k + kernels == dispatches.len();
            if kernels > 0 || (bracket.is_some() && (first || last)) {
                let timestamp_writes =
                    bracket
                        .filter(|_| first || last)
                        .map(|b| wgpu::ComputePassTimestampWrites {
                            query_set: b.queries,
                            beginning_of_pass_write_index: first.then_some(b.begin),
                            end_of_pass_write_index: last.then_some(b.end),
                        });
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("speckle"),
                    timestamp_writes,
                });
                for d in &dispatches[k..k + kernels] {
                    if let Work::Kernel {
                        pipeline,
                        bind_group,
                        workgroups,
                    } = &d.work
                    {
                        pass.set_pipeline(pipeline);
                        pass.set_bind_group(0, bind_group, &[]);
                        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
                    }
                }
            }
            k += kernels;
            if k == dispatches.len() {
                return;
            }
            if let Work::CopyToTexture(c) = &dispatches[k].work {
                encoder.copy_buffer_to_texture(
                    wgpu::TexelCopyBufferInfo {
                        buffer: &c.buffer,
                        layout: wgpu::TexelCopyBufferLayout {
                            offset: c.offset,
                            bytes_per_row: Some(c.bytes_per_row),
                            rows_per_image: Some(c.size[1]),
                        },
                    },
                    wgpu::TexelCopyTextureInfo {
                        texture: &c.texture,
                        mip_level: 0,
                        origin: wgpu::Origin3d {
                            x: 0,
                            y: c.row,
                            z: c.layer,
                        },
                        aspect: wgpu::TextureAspect::All,
                    },
                    wgpu::Extent3d {
                        width: c.size[0],
                        height: c.size[1],
                        depth_or_array_layers: c.layers,
                    },
                );
            }
            k += 1;
            first = false;
        }
    }

    /// Records `dispatches` (see [`Gpu::encode`]), submits and waits for the GPU.
    pub fn execute(&self, dispatches: &[Dispatch]) -> Result<()> {
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        Gpu::encode(&mut encoder, dispatches, None);
        self.queue.submit([encoder.finish()]);
        self.check_scopes("running kernels", memory, validation)?;
        self.wait()
    }

    /// Pops an out-of-memory scope and a validation scope (in that order) into an `Error`.
    pub(crate) fn check_scopes(
        &self,
        context: &str,
        memory: wgpu::ErrorScopeGuard,
        validation: wgpu::ErrorScopeGuard,
    ) -> Result<()> {
        let oom = pollster::block_on(memory.pop());
        let invalid = pollster::block_on(validation.pop());
        if let Some(e) = oom {
            return Err(Error::OutOfMemory {
                context: context.into(),
                message: e.to_string(),
            });
        }
        if let Some(e) = invalid {
            return Err(Error::Gpu {
                context: context.into(),
                message: e.to_string(),
            });
        }
        Ok(())
    }

    /// Waits until all submitted work has finished; reports device loss and stray errors.
    pub fn wait(&self) -> Result<()> {
        let polled = self.device.poll(wgpu::PollType::wait_indefinitely());
        self.health()?;
        polled
            .map(|_| ())
            .map_err(|e| Error::DeviceLost(e.to_string()))
    }

    fn health(&self) -> Result<()> {
        let mut health = lock(&self.health);
        if let Some(reason) = &health.lost {
            return Err(Error::DeviceLost(reason.clone()));
        }
        if !health.uncaptured.is_empty() {
            let message = health.uncaptured.join("; ");
            health.uncaptured.clear();
            return Err(Error::Gpu {
                context: "running GPU work".into(),
                message,
            });
        }
        Ok(())
    }

    /// Creates a buffer, turning allocation failure into an `Error` instead of a panic.
    pub(crate) fn create_buffer(
        &self,
        label: &str,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let limit = self.limits.max_buffer_size;
        if size > limit {
            return Err(Error::Limit {
                what: label.to_owned(),
                needed: size,
                limit,
                limit_name: "max_buffer_size",
            });
        }
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4).next_multiple_of(4),
            usage,
            mapped_at_creation: false,
        });
        self.check_scopes(
            &format!("allocating {label} ({size} bytes)"),
            memory,
            validation,
        )?;
        Ok(buffer)
    }

    /// Copies `size` bytes at `offset` of `buffer` (which needs `COPY_SRC`) to the host.
    pub fn read_bytes(&self, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        let staging = self.create_buffer(
            "speckle.readback",
            size,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..size);
        let (sender, receiver) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = sender.send(r);
        });
        self.wait()?;
        // Another thread's poll may be the one that runs our callback: wait for it, polling
        // again now and then in case nothing else does.
        loop {
            match receiver.recv_timeout(std::time::Duration::from_millis(5)) {
                Ok(Ok(())) => break,
                Ok(Err(e)) => {
                    return Err(Error::Gpu {
                        context: "mapping a read-back buffer".into(),
                        message: e.to_string(),
                    })
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => self.wait()?,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::DeviceLost(
                        "the read-back buffer was never mapped".into(),
                    ))
                }
            }
        }
        let bytes = {
            let view = slice.get_mapped_range().map_err(|e| Error::Gpu {
                context: "reading a mapped buffer".into(),
                message: e.to_string(),
            })?;
            view.to_vec()
        };
        staging.unmap();
        Ok(bytes)
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the cached pipelines
/// and error lists stay valid whatever a panicking caller did).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
