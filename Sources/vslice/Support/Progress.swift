import Foundation
import Synchronization
import VSliceKit

/// Progress on stderr: a bar redrawn in place on a TTY, fitted to the terminal's width (and refitted when
/// the window is resized), a plain line every few seconds otherwise.
/// Frames count kept frames only, so the bar ends at exactly 100 %; a failed attempt's frames are taken back.
final class ProgressPrinter: Sendable {
    private struct State {
        var model = ProgressModel()
        var lastDraw = 0.0
        var width = 80
        /// The bar line is on screen (not yet ended with a newline).
        var open = false
        var finished = false
    }
    private let state = Mutex(State())
    private let tty: Bool
    private let label: String
    private let enabled: Bool
    /// In a batch: file i of N and the batch's ETA on the line.
    private let batch: BatchProgress?
    nonisolated(unsafe) private var resize: DispatchSourceSignal?

    init(label: String, enabled: Bool, batch: BatchProgress? = nil) {
        self.label = label
        self.enabled = enabled
        self.batch = batch
        tty = isatty(STDERR_FILENO) == 1
        guard enabled, tty else { return }
        state.withLock { $0.width = Self.columns() }
        signal(SIGWINCH, SIG_IGN)
        let src = DispatchSource.makeSignalSource(signal: SIGWINCH, queue: .global())
        src.setEventHandler { [weak self] in self?.resized() }
        src.resume()
        resize = src
    }

    deinit { resize?.cancel() }

    /// The terminal's width in columns (stderr's, else $COLUMNS, else 80).
    static func columns() -> Int {
        var ws = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 { return Int(ws.ws_col) }
        if let c = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), c > 0 { return c }
        return 80
    }

    private func resized() {
        let line: String? = state.withLock { s in
            s.width = Self.columns()
            guard s.open, !s.finished else { return nil }
            return "\r\u{1B}[2K" + ProgressText.bar(figures(s.model, now: Self.now()), width: s.width)
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    private func figures(_ model: ProgressModel, now: Double) -> ProgressText.Figures {
        let f = ProgressText.Figures(name: label, model: model, now: now)
        return batch?.figures(f, now: now) ?? f
    }

    func handle(_ event: PipelineEvent) {
        guard enabled else { return }
        let now = Self.now()
        let line: String? = state.withLock { s in
            s.model.apply(event, now: now)
            var force = false
            switch event {
            case .taskStarted, .alreadyDone: return nil
            case .planned, .segmentDone, .audioDone, .merged, .published: force = true
            case .framesProcessed, .segmentStarted, .segmentFailed: break
            }
            let interval = tty ? 0.2 : 5
            guard force || now - s.lastDraw >= interval else { return nil }
            s.lastDraw = now
            let figures = figures(s.model, now: now)
            var text: String
            switch event {
            case .merged: text = "\(label) merged"
            case let .published(path): text = "\(label) wrote \(path)"
            default: text = tty ? ProgressText.bar(figures, width: s.width) : ProgressText.plain(figures)
            }
            guard tty else { return text + "\n" }
            if case .published = event {
                s.finished = true
                s.open = false
                return "\r\u{1B}[2K" + ProgressText.shorten(text, to: s.width - 1) + "\n"
            }
            s.open = true
            return "\r\u{1B}[2K" + ProgressText.shorten(text, to: s.width - 1)
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    /// Ends an unfinished bar line (after a failure) so the error starts on its own line.
    func finishLine() {
        guard enabled, tty else { return }
        let open = state.withLock { s in
            defer { s.open = false; s.finished = true }
            return s.open
        }
        if open { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// Writes a line of its own above the bar (which the next redraw puts back).
    func note(_ text: String) {
        let open = enabled && tty && state.withLock { s in
            defer { s.open = false }
            return s.open
        }
        FileHandle.standardError.write(Data(((open ? "\r\u{1B}[2K" : "") + text + "\n").utf8))
    }
}
