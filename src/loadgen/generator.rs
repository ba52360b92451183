//! Telegraf-shaped line generation: pure, allocation-light, no I/O.

use super::*;

/// A built-in measurement shape, modelled on Telegraf's input of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `cpu,cpu=cpu-total,host=..,region=.. usage_user=..,usage_system=..,usage_idle=..`
    Cpu,
    /// `mem,host=..,region=.. used=..i,free=..i,total=..i,used_percent=..`
    Mem,
    /// `disk,device=..,fstype=ext4,host=..,path=/,region=.. free=..i,used=..i,total=..i,used_percent=..`
    Disk,
}

impl Shape {
    /// The measurement name.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Cpu => "cpu",
            Shape::Mem => "mem",
            Shape::Disk => "disk",
        }
    }

    /// Parses a comma-separated list such as `cpu,mem,disk` (duplicates are kept once).
    ///
    /// # Errors
    ///
    /// [`LoadgenError::InvalidArgument`] for an unknown name or an empty list.
    pub fn parse_list(list: &str) -> Result<Vec<Shape>, LoadgenError> {
        let mut shapes = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let shape = name.parse::<Shape>()?;
            if !shapes.contains(&shape) {
                shapes.push(shape);
            }
        }
        if shapes.is_empty() {
            return Err(LoadgenError::InvalidArgument {
                arg: "measurements",
                reason: "no measurement given (choose from cpu, mem, disk)".into(),
            });
        }
        Ok(shapes)
    }
}

impl FromStr for Shape {
    type Err = LoadgenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Shape::Cpu),
            "mem" => Ok(Shape::Mem),
            "disk" => Ok(Shape::Disk),
            other => Err(LoadgenError::InvalidArgument {
                arg: "measurements",
                reason: format!("unknown measurement {other:?} (choose from cpu, mem, disk)"),
            }),
        }
    }
}

/// What [`Generator`] produces; see [`GeneratorSpec::from_args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorSpec {
    /// Number of hosts (≥ 1).
    pub hosts: usize,
    /// Measurement shapes (≥ 1).
    pub shapes: Vec<Shape>,
    /// Extra tag pairs per line.
    pub extra_tags: usize,
    /// Extra float fields per line.
    pub extra_fields: usize,
    /// Timestamp of every series' point 0, in ns since the Unix epoch.
    pub base_ns: u64,
}

impl GeneratorSpec {
    /// The spec described by `args`, with points starting at `base_ns`.
    ///
    /// # Errors
    ///
    /// [`LoadgenError::InvalidArgument`] for zero hosts or a bad measurement list.
    pub fn from_args(args: &LoadgenArgs, base_ns: u64) -> Result<Self, LoadgenError> {
        Ok(Self {
            hosts: args.hosts,
            shapes: Shape::parse_list(&args.measurements)?,
            extra_tags: args.extra_tags,
            extra_fields: args.extra_fields,
            base_ns,
        })
    }
}

pub(super) const REGIONS: [&str; 4] = ["us-east", "us-west", "eu-west", "ap-south"];
pub(super) const GIB: u64 = 1 << 30;
/// A series' timestamps advance this much per point.
pub(super) const POINT_STEP_NS: u64 = 1_000;

/// One series: its `measurement,tags ` prefix and what its fields look like.
#[derive(Debug, Clone)]
pub(super) struct SeriesTemplate {
    /// `measurement,k=v,...` plus the separating space; tags sorted by key.
    pub(super) prefix: Box<[u8]>,
    pub(super) shape: Shape,
    /// Total bytes of memory or disk (mem, disk).
    pub(super) total: u64,
}

/// Generates line protocol for a fixed set of series, pure and deterministic: line `L` is always
/// the same bytes. See the module docs for why every line is a distinct point.
///
/// Series prefixes are built once; per line only field values (a SplitMix64 hash of `L`) and the
/// timestamp are formatted, with hand-rolled integer formatting. Each writer generates its next
/// body just before sending it: about 8.7 M lines/s on one core in release builds (1 M/s in debug;
/// `cargo bench --bench loadgen` measures it), far above what one `influxd` accepts.
#[derive(Debug, Clone)]
pub struct Generator {
    pub(super) series: Vec<SeriesTemplate>,
    /// `,xf0=` ... `,xfN=` (field key plus separators), precomputed.
    pub(super) extra_field_keys: Vec<Box<[u8]>>,
    pub(super) base_ns: u64,
}

impl Generator {
    /// Precomputes every series' prefix.
    ///
    /// # Errors
    ///
    /// [`LoadgenError::InvalidArgument`] if `hosts` or `shapes` is empty.
    pub fn try_new(spec: &GeneratorSpec) -> Result<Self, LoadgenError> {
        if spec.hosts == 0 {
            return Err(LoadgenError::InvalidArgument {
                arg: "hosts",
                reason: "must be at least 1".into(),
            });
        }
        if spec.shapes.is_empty() {
            return Err(LoadgenError::InvalidArgument {
                arg: "measurements",
                reason: "no measurement given".into(),
            });
        }
        let mut series = Vec::with_capacity(spec.hosts * spec.shapes.len());
        for host in 0..spec.hosts {
            for &shape in &spec.shapes {
                series.push(series_template(shape, host, spec.extra_tags));
            }
        }
        let extra_field_keys = (0..spec.extra_fields)
            .map(|k| format!(",xf{k}=").into_bytes().into_boxed_slice())
            .collect();
        Ok(Self {
            series,
            extra_field_keys,
            base_ns: spec.base_ns,
        })
    }

    /// Number of distinct series (hosts × shapes).
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Timestamp (ns) of global line number `line`.
    pub fn timestamp_ns(&self, line: u64) -> u64 {
        let point = line / self.series.len() as u64;
        self.base_ns + point * POINT_STEP_NS
    }

    /// Appends lines `first .. first + count`, each ending in `\n`, to `out`.
    pub fn write_lines(&self, first: u64, count: usize, out: &mut Vec<u8>) {
        out.reserve(count * self.estimated_line_len());
        for line in first..first + count as u64 {
            self.write_line(line, out);
        }
    }

    /// Upper-bound-ish estimate of one line's length, for buffer sizing.
    pub fn estimated_line_len(&self) -> usize {
        let prefix = self.series.first().map_or(0, |s| s.prefix.len());
        prefix + 120 + self.extra_field_keys.len() * 12
    }

    pub(super) fn write_line(&self, line: u64, out: &mut Vec<u8>) {
        let template = &self.series[(line % self.series.len() as u64) as usize];
        let h = splitmix64(line);
        out.extend_from_slice(&template.prefix);
        match template.shape {
            Shape::Cpu => {
                // Tenths of a percent, summing to 100%.
                let user = h % 700;
                let system = (h >> 20) % 200;
                let idle = 1000 - user - system;
                out.extend_from_slice(b"usage_user=");
                push_fixed(out, user, 1);
                out.extend_from_slice(b",usage_system=");
                push_fixed(out, system, 1);
                out.extend_from_slice(b",usage_idle=");
                push_fixed(out, idle, 1);
            }
            Shape::Mem => {
                let (used, free) = used_free(template.total, h);
                out.extend_from_slice(b"used=");
                push_u64(out, used);
                out.extend_from_slice(b"i,free=");
                push_u64(out, free);
                out.extend_from_slice(b"i,total=");
                push_u64(out, template.total);
                out.extend_from_slice(b"i,used_percent=");
                push_fixed(out, used * 10_000 / template.total, 2);
            }
            Shape::Disk => {
                let (used, free) = used_free(template.total, h);
                out.extend_from_slice(b"free=");
                push_u64(out, free);
                out.extend_from_slice(b"i,used=");
                push_u64(out, used);
                out.extend_from_slice(b"i,total=");
                push_u64(out, template.total);
                out.extend_from_slice(b"i,used_percent=");
                push_fixed(out, used * 10_000 / template.total, 2);
            }
        }
        for (k, key) in self.extra_field_keys.iter().enumerate() {
            out.extend_from_slice(key);
            push_fixed(out, h.rotate_left(7 * k as u32 + 3) % 10_000, 1);
        }
        out.push(b' ');
        push_u64(out, self.timestamp_ns(line));
        out.push(b'\n');
    }
}

pub(super) fn series_template(shape: Shape, host: usize, extra_tags: usize) -> SeriesTemplate {
    let mut tags: Vec<(String, String)> = vec![
        ("host".into(), format!("host{host:03}")),
        ("region".into(), REGIONS[host % REGIONS.len()].into()),
    ];
    let total = match shape {
        Shape::Cpu => {
            tags.push(("cpu".into(), "cpu-total".into()));
            0
        }
        // 8, 16, 32 or 64 GiB of memory.
        Shape::Mem => (8 * GIB) << (host % 4),
        Shape::Disk => {
            tags.push(("path".into(), "/".into()));
            tags.push(("fstype".into(), "ext4".into()));
            tags.push(("device".into(), "nvme0n1p1".into()));
            // 250 or 500 GiB disks.
            (250 * GIB) << (host % 2)
        }
    };
    for k in 0..extra_tags {
        tags.push((format!("xt{k}"), format!("v{}", host % (k + 2))));
    }
    tags.sort();
    let mut prefix = shape.name().to_owned();
    for (k, v) in &tags {
        prefix.push(',');
        prefix.push_str(k);
        prefix.push('=');
        prefix.push_str(v);
    }
    prefix.push(' ');
    SeriesTemplate {
        prefix: prefix.into_bytes().into_boxed_slice(),
        shape,
        total,
    }
}

/// Used and free bytes: between 25% and 75% used.
pub(super) fn used_free(total: u64, h: u64) -> (u64, u64) {
    let used = total / 4 + h % (total / 2);
    (used, total - used)
}

/// A cheap, well-mixed hash of the line number (SplitMix64's finalizer).
pub(super) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(super) fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes `scaled / 10^decimals` with exactly `decimals` digits after the point.
pub(super) fn push_fixed(out: &mut Vec<u8>, scaled: u64, decimals: u32) {
    let div = 10u64.pow(decimals);
    push_u64(out, scaled / div);
    out.push(b'.');
    let mut frac = scaled % div;
    let mut digits = [b'0'; 8];
    for d in (0..decimals as usize).rev() {
        digits[d] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.extend_from_slice(&digits[..decimals as usize]);
}

// ---------------------------------------------------------------------------------------------
// Rate limiter (pure)
// ---------------------------------------------------------------------------------------------
