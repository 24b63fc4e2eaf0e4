import Foundation
import Synchronization
import VSliceKit

/// Where a batch is — file i of N — and how long the rest of it should take: the current file's ETA, plus the
/// files after it at the seconds per input byte the batch's finished transcodes took (before the first has
/// finished, the current one's: its time so far and its ETA, over its size). A file the batch will skip is
/// counted as work until it is reached: the ETA errs long.
final class BatchProgress: Sendable {
    private struct State {
        var sizes: [Int64]
        var current = 0
        var started = 0.0
        var doneBytes: Int64 = 0
        var doneSeconds = 0.0
    }
    private let state: Mutex<State>

    init(inputs: [String]) {
        let sizes = inputs.map { path -> Int64 in
            var st = stat()
            return stat(path, &st) == 0 ? Int64(st.st_size) : 0
        }
        state = Mutex(State(sizes: sizes))
    }

    /// File `index` (from 0) starts.
    func starting(_ index: Int, now: Double) {
        state.withLock { $0.current = index; $0.started = now }
    }

    /// The current file was transcoded: its time counts in the rate.
    func finished(now: Double) {
        state.withLock { s in
            guard s.sizes.indices.contains(s.current) else { return }
            s.doneBytes += s.sizes[s.current]
            s.doneSeconds += now - s.started
        }
    }

    /// (file, files), the file counted from 1.
    var position: (file: Int, files: Int) { state.withLock { ($0.current + 1, $0.sizes.count) } }

    /// Seconds left for the whole batch when the current file has `current` left (nil: not known yet).
    func eta(current: Double?, now: Double) -> Double? {
        guard let current else { return nil }
        return state.withLock { s in
            guard s.sizes.indices.contains(s.current) else { return nil }
            let rest = s.sizes[(s.current + 1)...].reduce(0, +)
            let perByte = s.doneBytes > 0 ? s.doneSeconds / Double(s.doneBytes)
                : s.sizes[s.current] > 0 ? (now - s.started + current) / Double(s.sizes[s.current]) : 0
            return current + perByte * Double(rest)
        }
    }

    /// The progress line's figures with the batch's: file i of N, the batch's ETA.
    func figures(_ f: ProgressText.Figures, now: Double) -> ProgressText.Figures {
        var f = f
        let (file, files) = position
        f.file = file
        f.files = files
        f.batchEta = eta(current: f.eta, now: now)
        return f
    }
}
