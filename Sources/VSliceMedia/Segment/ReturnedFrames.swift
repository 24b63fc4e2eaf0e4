import Foundation
import VSliceModel

/// With a `--process` program, a segment's frames count as done when they come back from it, not when they are
/// pushed into its pipe (a pipe holds dozens of small frames, so a program that has not answered yet looked
/// half done). The source tells each kept frame it hands on (`handedOn`); each frame out of the program
/// (`returned`) is mapped back to the input frames it covers with the program's rate P/Q (frame j stands at input
/// position j·Q/P), and the kept frames among those are reported. `finish` reports what is left, so a segment
/// always ends at its kept frame count. All calls come from the segment's thread.
package final class ReturnedFrames: @unchecked Sendable {
    private let rate: Ratio
    private let report: @Sendable (Int) -> Void
    /// Kept frames among the first i + 1 frames handed on.
    private var keptThrough: [Int] = []
    private var kept = 0
    private var reported = 0
    private var out = 0

    package init(rate: Ratio, report: @escaping @Sendable (Int) -> Void) {
        self.rate = rate.num > 0 && rate.den > 0 ? rate : Ratio(num: 1, den: 1)
        self.report = report
    }

    /// A kept frame the source is handing on (before `pushed`).
    package func keptFrame(_ n: Int) { kept += n }

    /// A frame was handed on to the first processor.
    package func pushed() { keptThrough.append(kept) }

    /// A frame came out of the last processor.
    package func returned() {
        out += 1
        let covered = Int(Int64(out) * Int64(rate.den) / Int64(rate.num))
        guard covered > 0, !keptThrough.isEmpty else { return }
        flush(to: keptThrough[min(covered, keptThrough.count) - 1])
    }

    /// The end of the stream: every kept frame is done.
    package func finish() { flush(to: kept) }

    private func flush(to n: Int) {
        guard n > reported else { return }
        report(n - reported)
        reported = n
    }
}
