import Foundation
import Synchronization
import VSliceKit

/// Progress on stderr: a bar redrawn in place on a TTY, a plain line every few seconds otherwise.
/// Frames count kept frames only, so the bar ends at exactly 100 %; a failed attempt's frames are taken back.
final class ProgressPrinter: Sendable {
    private struct State {
        var total = 0
        var done = 0
        var segments = 0
        var segmentsDone = 0
        var running = 0
        var startTime = 0.0
        var startFrames = 0
        var lastDraw = 0.0
        /// Frames counted for each running attempt, to take back if it fails.
        var attempt: [Int: Int] = [:]
    }
    private let state = Mutex(State())
    private let tty: Bool
    private let label: String
    private let enabled: Bool

    init(label: String, enabled: Bool) {
        self.label = label
        self.enabled = enabled
        tty = isatty(STDERR_FILENO) == 1
    }

    func handle(_ event: PipelineEvent) {
        guard enabled else { return }
        let now = Date().timeIntervalSince1970
        let line: String? = state.withLock { s in
            var force = false
            switch event {
            case .taskStarted: return nil
            case let .planned(total, segments, already):
                s.total = total; s.segments = segments; s.done = already; s.startFrames = already
                s.segmentsDone = 0; s.startTime = now; force = true
            case let .framesProcessed(segment, n):
                s.done += n
                s.attempt[segment, default: 0] += n
            case let .segmentStarted(index):
                s.running += 1
                s.attempt[index] = 0
            case let .segmentDone(index, _):
                s.running -= 1; s.segmentsDone += 1; force = true
                s.attempt[index] = nil
            case let .segmentFailed(index, _):
                s.running -= 1
                s.done -= s.attempt.removeValue(forKey: index) ?? 0
            case .audioDone, .merged, .published: force = true
            }
            let interval = tty ? 0.2 : 5
            guard force || now - s.lastDraw >= interval else { return nil }
            s.lastDraw = now
            let elapsed = max(now - s.startTime, 1e-3)
            let fps = Double(s.done - s.startFrames) / elapsed
            let frac = s.total > 0 ? min(1, Double(s.done) / Double(s.total)) : 0
            let eta = fps > 0 ? Double(s.total - s.done) / fps : 0
            var text = String(format: "%@ %5.1f%% %d/%d frames, %.1f fps, ETA %@, segments %d/%d (%d running)",
                              label, frac * 100, s.done, s.total, fps, Self.duration(eta), s.segmentsDone, s.segments, s.running)
            if case .merged = event { text = "\(label) merged" }
            if case let .published(path) = event { text = "\(label) wrote \(path)" }
            if tty {
                let width = 24
                let filled = Int(frac * Double(width))
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                return "\r\u{1B}[2K[\(bar)] " + text + (event.isFinal ? "\n" : "")
            }
            return text + "\n"
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    /// Ends an unfinished bar line (after a failure) so the error starts on its own line.
    func finishLine() {
        guard enabled, tty else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}

extension PipelineEvent {
    var isFinal: Bool { if case .published = self { true } else { false } }
}
