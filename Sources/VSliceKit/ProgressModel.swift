import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// What a running task has done, from its `PipelineEvent`s: kept frames (so it ends at exactly 100 %; a
/// failed attempt's frames are taken back), segments, and a frame rate over the last `window` seconds, so an
/// early burst (the encoder filling its lookahead) does not make the ETA low for the rest of the run. That rate
/// is smoothed (an exponential average with time constant `smoothing`), so frames that come back in bursts (a
/// model's batches, segments ending together) do not swing it, nor the ETA taken from it.
/// Pure bookkeeping: the caller passes the clock.
public struct ProgressModel: Sendable {
    public private(set) var total = 0
    public private(set) var done = 0
    public private(set) var segments = 0
    public private(set) var segmentsDone = 0
    /// Segments already done when the run started (a resume).
    public private(set) var segmentsAlreadyDone = 0
    public private(set) var running = 0
    /// Frames processed by this run, failed attempts included: the work rate, never taken back.
    public private(set) var processed = 0
    private var attempt: [Int: Int] = [:]
    private var samples: [(time: Double, processed: Int)] = []
    private var startTime: Double?
    /// The smoothed rate and when it was last updated.
    private var smoothed: (fps: Double, time: Double)?

    /// The rate is measured over this many recent seconds.
    public var window: Double = 20
    /// The smoothed rate follows the measured one with this time constant (seconds).
    public var smoothing: Double = 8
    /// No rate (and no ETA) before this many seconds of frames.
    public var warmUp: Double = 1.5

    public init() {}

    public mutating func apply(_ event: PipelineEvent, now: Double) {
        switch event {
        case let .planned(total, segments, already):
            self.total = total; self.segments = segments; done = already
            segmentsDone = segmentsAlreadyDone
            startTime = now
            samples = [(now, processed)]
            smoothed = nil
        case let .alreadyDone(segments): segmentsAlreadyDone = segments; segmentsDone = segments
        case let .framesProcessed(segment, n):
            done += n; processed += n
            attempt[segment, default: 0] += n
            record(now)
        case let .segmentStarted(index):
            running += 1
            attempt[index] = 0
        case let .segmentDone(index, _):
            running -= 1; segmentsDone += 1
            attempt[index] = nil
        case let .segmentFailed(index, _):
            running = max(0, running - 1)
            done -= attempt.removeValue(forKey: index) ?? 0
        case .taskStarted, .audioDone, .merged, .published: break
        }
    }

    private mutating func record(_ now: Double) {
        if let last = samples.last, now - last.time < 0.25 {
            samples[samples.count - 1].processed = processed
        } else {
            samples.append((now, processed))
        }
        while samples.count > 2, now - samples[1].time >= window { samples.removeFirst() }
        if let raw = windowRate(now: now) { smoothed = (blend(raw, now: now), now) }
    }

    /// The smoothed rate moved towards `raw` for the time since its last update (`raw` itself at first).
    private func blend(_ raw: Double, now: Double) -> Double {
        guard let s = smoothed, smoothing > 0 else { return raw }
        let a = 1 - exp(-max(0, now - s.time) / smoothing)
        return s.fps + a * (raw - s.fps)
    }

    /// Frames per second over the recent window, unsmoothed; nil until it is known.
    private func windowRate(now: Double) -> Double? {
        guard let first = samples.first, let start = startTime, now - start >= warmUp, processed > first.processed else { return nil }
        let span = now - first.time
        return span > 0 ? Double(processed - first.processed) / span : nil
    }

    public var fraction: Double { total > 0 ? min(1, max(0, Double(done) / Double(total))) : 0 }

    /// Frames per second over the recent window, smoothed; nil until it is known.
    public func fps(now: Double) -> Double? {
        guard let raw = windowRate(now: now) else { return nil }
        return blend(raw, now: now)
    }

    /// Seconds left at the smoothed rate; nil until the rate is known.
    public func eta(now: Double) -> Double? {
        guard let fps = fps(now: now), fps > 0 else { return nil }
        return Double(max(0, total - done)) / fps
    }
}

/// The progress line, fitted to the terminal: the file name is shortened first, then details are dropped,
/// so a redraw never wraps (one bar line on screen at any width).
public enum ProgressText {
    public struct Figures: Sendable {
        public var name: String
        public var fraction: Double
        public var done: Int
        public var total: Int
        public var fps: Double?
        public var eta: Double?
        public var segmentsDone: Int
        public var segments: Int
        public var running: Int
        /// In a batch: this file's place (from 1) among `files`, and the whole batch's ETA.
        public var file: Int? = nil
        public var files: Int? = nil
        public var batchEta: Double? = nil

        public init(name: String, model: ProgressModel, now: Double) {
            self.name = name
            fraction = model.fraction
            done = model.done
            total = model.total
            fps = model.fps(now: now)
            eta = model.eta(now: now)
            segmentsDone = model.segmentsDone
            segments = model.segments
            running = model.running
        }
    }

    public static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "--:--" }
        let t = Int(min(s, 359_999).rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }

    static func percent(_ f: Figures) -> String { String(format: "%5.1f%%", f.fraction * 100) }
    static func fps(_ f: Figures) -> String { f.fps.map { String(format: "%.1f fps", $0) } ?? "-- fps" }
    static func eta(_ f: Figures) -> String { "ETA " + (f.eta.map(duration) ?? "--:--") }
    static func segments(_ f: Figures, short: Bool = false) -> String {
        let word = short ? "seg" : f.segments == 1 ? "segment" : "segments"
        return "\(word) \(f.segmentsDone)/\(f.segments)" + (short ? "" : " (\(f.running) running)")
    }

    /// In a batch: ", file 2/5, batch ETA 3:10" (`short`: ", file 2/5"); "" outside one.
    static func batch(_ f: Figures, short: Bool = false) -> String {
        guard let file = f.file, let files = f.files else { return "" }
        return ", file \(file)/\(files)" + (short ? "" : ", batch ETA " + (f.batchEta.map(duration) ?? "--:--"))
    }

    /// The line for a log (not a terminal): everything, no bar.
    public static func plain(_ f: Figures) -> String {
        "\(f.name) \(percent(f)) \(f.done)/\(f.total) frames, \(fps(f)), \(eta(f)), \(segments(f))\(batch(f))"
    }

    /// The bar line for a terminal `width` columns wide: at most `width - 1` columns (writing the last column
    /// makes some terminals wrap).
    public static func bar(_ f: Figures, width: Int) -> String {
        let room = max(1, width - 1)
        func gauge(_ n: Int) -> String {
            let filled = min(n, Int(f.fraction * Double(n)))
            return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: n - filled) + "] "
        }
        // Richest first; each needs the name at least `minName` columns (or whole, if shorter).
        let variants: [(prefix: String, suffix: String)] = [
            (gauge(24), " \(percent(f)) \(f.done)/\(f.total) frames, \(fps(f)), \(eta(f)), \(segments(f))\(batch(f))"),
            (gauge(20), " \(percent(f)) \(f.done)/\(f.total), \(fps(f)), \(eta(f)), \(segments(f, short: true))\(batch(f))"),
            (gauge(12), " \(percent(f)) \(fps(f)), \(eta(f))\(batch(f, short: true))"),
            (gauge(10), " \(percent(f)) \(eta(f))\(batch(f, short: true))"),
            ("", " \(percent(f)) \(eta(f))"),
        ]
        let minName = min(columns(f.name), 12)
        for v in variants {
            let left = room - columns(v.prefix) - columns(v.suffix)
            if left >= minName { return v.prefix + shorten(f.name, to: left) + v.suffix }
        }
        return clip(percent(f).trimmingCharacters(in: .whitespaces) + " " + eta(f), to: room)
    }

    /// `name` in at most `n` columns: the start, "…", and the end (the extension stays visible).
    public static func shorten(_ name: String, to n: Int) -> String {
        if columns(name) <= n { return name }
        if n <= 1 { return clip(name, to: n) }
        let tail = min(8, (n - 1) / 3)
        var end = ""
        for ch in name.reversed() {
            if columns(end) + columns(String(ch)) > tail { break }
            end = String(ch) + end
        }
        return clip(name, to: n - 1 - columns(end)) + "…" + end
    }

    static func clip(_ s: String, to n: Int) -> String {
        var out = ""
        for ch in s {
            if columns(out) + columns(String(ch)) > n { break }
            out.append(ch)
        }
        return out
    }

    /// Terminal columns a string takes: wide East Asian characters and emoji 2, combining marks 0.
    public static func columns(_ s: String) -> Int {
        var n = 0
        for u in s.unicodeScalars {
            let v = u.value
            if (0x300...0x36F).contains(v) || (0x200B...0x200F).contains(v) || (0xFE00...0xFE0F).contains(v) { continue }
            let wide = (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
                || (0xFFE0...0xFFE6).contains(v) || (0x1F300...0x1F64F).contains(v) || (0x1F900...0x1F9FF).contains(v)
                || (0x20000...0x3FFFD).contains(v)
            n += wide ? 2 : 1
        }
        return n
    }
}
