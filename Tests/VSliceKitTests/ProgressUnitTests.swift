import Foundation
import Synchronization
import Testing
@testable import VSliceKit
@testable import VSliceMedia
@testable import VSliceModel

/// Issue 30, item 4: the progress of a slow model, as pure bookkeeping (the clock passed in).
@Suite("progress of a slow model: frames counted as they come back, a smoothed rate")
struct ProgressUnitTests {
    /// The frames reported through `ReturnedFrames` for a segment handed on as `handed` (true: a kept frame),
    /// with the program giving `outputs` frames back after each push (or all at the end).
    static func reported(rate: Ratio, handed: [Bool], returnAfterPush: Bool) -> (afterEachPush: [Int], total: Int) {
        let total = Atomic<Int>(0)
        let r = ReturnedFrames(rate: rate, report: { total.add($0, ordering: .relaxed) })
        var seen: [Int] = []
        var owed: Int32 = 0
        for kept in handed {
            if kept { r.keptFrame(1) }
            r.pushed()
            if returnAfterPush {
                // P/Q output frames per input frame.
                owed += rate.num
                while owed >= rate.den { r.returned(); owed -= rate.den }
            }
            seen.append(total.load(ordering: .relaxed))
        }
        r.finish()
        return (seen, total.load(ordering: .relaxed))
    }

    @Test("nothing is done while the program has not answered (it was: every frame pushed into its pipe); all is done at the end")
    func notBeforeItAnswers() {
        // 2 buffer frames, 5 kept, 1 buffer frame: a program that answers only at the end of its input.
        let handed = [false, false, true, true, true, true, true, false]
        let silent = Self.reported(rate: Ratio(num: 1, den: 1), handed: handed, returnAfterPush: false)
        #expect(silent.afterEachPush.allSatisfy { $0 == 0 }, "\(silent.afterEachPush)")
        #expect(silent.total == 5)
        // A program answering each frame at once: the kept frames as they come back, never the buffers.
        let prompt = Self.reported(rate: Ratio(num: 1, den: 1), handed: handed, returnAfterPush: true)
        #expect(prompt.afterEachPush == [0, 0, 1, 2, 3, 4, 5, 5] && prompt.total == 5, "\(prompt.afterEachPush)")
    }

    @Test("frames out are mapped back to input frames with the program's rate (2 out per input, 1 out per 2 inputs)")
    func mappedByRate() {
        let handed = [false, true, true, true, true, false]
        let doubling = Self.reported(rate: Ratio(num: 2, den: 1), handed: handed, returnAfterPush: true)
        #expect(doubling.afterEachPush == [0, 1, 2, 3, 4, 4] && doubling.total == 4, "\(doubling.afterEachPush)")
        let halving = Self.reported(rate: Ratio(num: 1, den: 2), handed: handed, returnAfterPush: true)
        #expect(halving.afterEachPush == [0, 1, 1, 3, 3, 4] && halving.total == 4, "\(halving.afterEachPush)")
    }

    @Test("the rate is smoothed: a model answering in batches after a long start-up does not swing it (it swung from 0.3 to 4.2 fps)")
    func smoothedRate() {
        var m = ProgressModel()
        m.apply(.planned(totalFrames: 2000, segments: 4, framesAlreadyDone: 0), now: 0)
        m.apply(.segmentStarted(index: 0), now: 0)
        // 8 s of start-up with nothing back, then batches of 20 frames every 10 s: 2 fps.
        var shown: [Double] = []
        var etas: [(eta: Double, left: Double)] = []
        var t = 8.0
        while t <= 400 {
            m.apply(.framesProcessed(segment: 0, frames: 20), now: t)
            for s in stride(from: t, to: t + 10, by: 1) where s >= 40 {
                shown.append(m.fps(now: s) ?? 0)
                etas.append((m.eta(now: s) ?? 0, Double(2000 - m.done) / 2 - (s - t)))
            }
            t += 10
        }
        let lo = shown.min() ?? 0, hi = shown.max() ?? 0
        // Unsmoothed, the rate of the last 20 s swung between 1.38 and 2.0 fps, and the ETA was up to 46 % off.
        #expect(lo > 1.5 && hi < 2.2, "fps between \(lo) and \(hi)")
        #expect(etas.allSatisfy { abs($0.eta - $0.left) < 0.3 * $0.left }, "\(etas.prefix(20))")
    }
}
