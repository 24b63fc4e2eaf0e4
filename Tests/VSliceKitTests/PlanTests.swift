import Foundation
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

@Suite("segment planning")
struct PlanTests {
    /// 25 fps in 1/12800, `n` frames, a keyframe every `gop` frames.
    func index(frames n: Int, gop: Int, openGop: Bool = false) -> VideoIndex {
        VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 12800), pts: (0..<n).map { Int64($0 * 512) },
                   keyframeIndices: Array(stride(from: 0, to: n, by: gop)), openGop: openGop,
                   endTime: Double(n) / 25, dtsStrictlyIncreasing: true, lastFrameDuration: 512)
    }

    @Test("GOP mode cuts at the first keyframe at or after each mark")
    func gopCuts() {
        var s = TranscodeSettings()
        s.minSplitSeconds = 0
        s.segmentSeconds = 10
        // Keyframes every 3 s (75 frames): marks at 10, 20, 30 s → cuts at 12 s, 21 s, 30 s.
        let plan = Plan(index: index(frames: 25 * 35, gop: 75), settings: s)
        #expect(plan.segments.map(\.firstFrame) == [0, 300, 525, 750])
        #expect(plan.segments.last!.lastFrame == 25 * 35 - 1)
        #expect(plan.segments.map(\.frameCount).reduce(0, +) == 25 * 35)
        #expect(plan.segments.allSatisfy { $0.decodeFrom == $0.firstFrame })
    }

    @Test("an input exactly --min-split-seconds long is split (its length counts the last frame)")
    func thresholdCountsLastFrame() {
        var s = TranscodeSettings()
        s.minSplitSeconds = 60
        s.segmentSeconds = 10
        let exact = Plan(index: index(frames: 25 * 60, gop: 50), settings: s)
        #expect(exact.segments.count == 6)
        let shorter = Plan(index: index(frames: 25 * 60 - 1, gop: 50), settings: s)
        #expect(shorter.segments.count == 1)
    }

    /// The time `jobs` workers need for the plan's segments, dispatched longest first (as the encode stage
    /// does), with a segment's cost its frame count; and the perfect split's time.
    func makespan(_ plan: Plan, jobs: Int) -> (Double, Double) {
        var workers = [Double](repeating: 0, count: jobs)
        for f in plan.segments.map(\.frameCount).sorted(by: >) {
            let i = workers.indices.min { workers[$0] < workers[$1] }!
            workers[i] += Double(f)
        }
        return (workers.max()!, Double(plan.frameCount) / Double(jobs))
    }

    @Test("the default plan fills the workers: shrinking segments, ≥ 97 % of the best split",
          arguments: [(120, 25, 2), (40, 25, 2), (40, 50, 2), (600, 50, 4), (30, 50, 2), (8, 25, 2), (3600, 60, 2)])
    func balanced(_ seconds: Int, _ gop: Int, _ jobs: Int) {
        var s = TranscodeSettings()
        s.jobs = jobs
        let plan = Plan(index: index(frames: 25 * seconds, gop: gop), settings: s)
        let frames = plan.segments.map(\.frameCount)
        #expect(frames.reduce(0, +) == 25 * seconds)
        #expect(plan.segments.count > 1, "\(plan.reason)")
        #expect(frames.allSatisfy { $0 >= 25 }, "a segment under the 1 s minimum: \(frames)")
        let (span, perfect) = makespan(plan, jobs: jobs)
        if plan.segments.allSatisfy({ $0.firstFrame % gop == 0 }) {
            // Cuts at keyframes: the best any such plan can do is whole GOPs per worker.
            let gops = (25 * seconds + gop - 1) / gop
            let bound = max(perfect, Double((gops + jobs - 1) / jobs * gop))
            #expect(bound / span >= 0.97, "\(frames): \(bound / span)")
        } else {
            // Cuts between keyframes only where keyframes alone leave a worker idle; then close to perfect, and
            // no segment decodes from further back than the segment before it.
            #expect(plan.reason.contains("between keyframes"))
            #expect(perfect / span >= 0.97, "\(frames): \(perfect / span)")
            for (a, b) in zip(plan.segments, plan.segments.dropFirst()) { #expect(b.decodeFrom >= a.firstFrame) }
        }
        #expect(!plan.reason.isEmpty)
    }

    @Test("the default plan keeps one segment where a split cannot pay: one job, too short, no keyframe to cut at")
    func unsplit() {
        var s = TranscodeSettings()
        s.jobs = 1
        #expect(Plan(index: index(frames: 25 * 60, gop: 25), settings: s).segments.count == 1)
        s.jobs = 2
        #expect(Plan(index: index(frames: 45, gop: 5), settings: s).segments.count == 1)
        let noKeys = Plan(index: index(frames: 25 * 60, gop: 25 * 60), settings: s)
        #expect(noKeys.segments.count == 1)
        #expect(noKeys.reason.contains("keyframe"))
        s.videoCodec = "libsvtav1"
        #expect(Plan(index: index(frames: 25 * 7, gop: 25), settings: s).segments.count == 1)
        #expect(Plan(index: index(frames: 25 * 60, gop: 25), settings: s).segments.allSatisfy { $0.frameCount >= 100 })
    }

    @Test("with fewer segments than jobs, each segment gets the idle jobs' threads")
    func threadsForFewSegments() {
        var s = TranscodeSettings()
        s.jobs = 4
        #expect(s.forRun(segments: 1).threadsPerJob == max(1, ProcessInfo.processInfo.activeProcessorCount))
        #expect(s.forRun(segments: 100).threadsPerJob == max(1, ProcessInfo.processInfo.activeProcessorCount / 4))
        s.threads = 1
        #expect(s.forRun(segments: 1).threadsPerJob == 1)
    }

    @Test("inputs shorter than --min-split-seconds make one segment")
    func shortInput() {
        var s = TranscodeSettings()
        s.minSplitSeconds = 60
        let plan = Plan(index: index(frames: 25 * 30, gop: 50), settings: s)
        #expect(plan.segments.count == 1)
        #expect(plan.segments[0].frameCount == 750)
    }

    @Test("frame mode with overlaps: exact sizes, buffers clamped at the ends, decode from the keyframe before")
    func frameMode() {
        var s = TranscodeSettings()
        s.minSplitSeconds = 0
        s.split = .frames
        s.segmentFrames = 40
        s.overlapBefore = 5
        s.overlapAfter = 3
        let plan = Plan(index: index(frames: 100, gop: 30), settings: s)
        #expect(plan.segments.map(\.firstFrame) == [0, 40, 80])
        #expect(plan.segments.map(\.lastFrame) == [39, 79, 99])
        #expect(plan.segments.map(\.bufferStart) == [0, 35, 75])
        #expect(plan.segments.map(\.bufferEnd) == [42, 82, 99])
        #expect(plan.segments.map(\.decodeFrom) == [0, 30, 60])
    }

    @Test("open GOPs start decoding one GOP earlier")
    func openGop() {
        var s = TranscodeSettings()
        s.minSplitSeconds = 0
        s.segmentSeconds = 2
        let plan = Plan(index: index(frames: 200, gop: 50, openGop: true), settings: s)
        #expect(plan.segments.map(\.firstFrame) == [0, 50, 100, 150])
        #expect(plan.segments.map(\.decodeFrom) == [0, 0, 50, 100])
    }

    @Test("--split scene: a cut goes to a scene change near its mark (decoding from the keyframe before), else to a keyframe")
    func sceneCuts() {
        var s = TranscodeSettings()
        s.jobs = 2
        s.split = .scene
        let idx = index(frames: 25 * 40, gop: 50)
        // First mark: 1000 / 4 = 250 frames; a scene change at 262 is within a quarter of it, one at 700 is not
        // near the second mark (250 + 750/4 = 437).
        let plan = Plan(index: idx, settings: s, scenes: [262 * 512, 700 * 512, 12345])
        #expect(plan.sceneChanges == [262, 700])
        #expect(plan.segments[1].firstFrame == 262)
        #expect(plan.segments[1].decodeFrom == 250)
        #expect(plan.segments[2].firstFrame % 50 == 0)
        #expect(plan.segments.map(\.frameCount).reduce(0, +) == 1000)
        #expect(plan.reason.contains("scene"))
    }

    @Test("keyframes too far apart for the segments (5 GOPs on 2 workers): cuts between keyframes fill the idle sixth")
    func betweenKeyframes() {
        var s = TranscodeSettings()
        s.jobs = 2
        // 10 s at 25 fps, a keyframe every 2 s: at keyframes, five 2 s segments keep one worker alone for the last.
        let plan = Plan(index: index(frames: 250, gop: 50), settings: s)
        let (span, perfect) = makespan(plan, jobs: 2)
        #expect(perfect / span >= 0.95, "\(plan.segments.map(\.frameCount))")
        #expect(plan.segments.contains { $0.decodeFrom < $0.firstFrame })
        #expect(plan.reason.contains("between keyframes"))
        #expect(plan.segments.map(\.frameCount).reduce(0, +) == 250)
    }

    @Test("overlap buffers cost every cut: with a filter's 10 frames per cut, one equal segment per job, and none shorter than ten times the buffers")
    func buffersCostCuts() {
        var s = TranscodeSettings()
        s.jobs = 2
        // 10 s at 25 fps, 2 s GOPs: without buffers two segments per job; with 8 + 2 buffer frames a cut, the
        // two extra cuts would process 20 frames more (8 % of 250) for no better balance.
        let plain = Plan(index: index(frames: 250, gop: 50), settings: s)
        #expect(plain.segments.count == 4)
        s.overlapBefore = 8
        s.overlapAfter = 2
        let buffered = Plan(index: index(frames: 250, gop: 50), settings: s)
        #expect(buffered.segments.count == 2, "\(buffered.segments.map(\.frameCount))")
        #expect(buffered.segments.map(\.frameCount).reduce(0, +) == 250)
        // A long input: no segment shorter than 100 frames (4 s), the buffers ≤ 10 % of each.
        let long = Plan(index: index(frames: 3000, gop: 25), settings: s)
        #expect(long.segments.count > 4)
        #expect(long.segments.allSatisfy { $0.frameCount >= 100 }, "\(long.segments.map(\.frameCount))")
        #expect(long.reason.contains("ten times the 10 buffer frames"), "\(long.reason)")
    }

    // MARK: the fixed cost of an element (measured before any work: ElementCost)

    /// 6 minutes at 30 fps (in 1/15360), a keyframe every 2 s: the bench's clip.
    func sixMinutes() -> VideoIndex {
        VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 15360), pts: (0..<10800).map { Int64($0 * 512) },
                   keyframeIndices: Array(stride(from: 0, to: 10800, by: 60)), openGop: false,
                   endTime: 360, dtsStrictlyIncreasing: true, lastFrameDuration: 512)
    }

    /// Each segment's fixed cost — start-up, worker start, and the frames decoded before its first one — as a share
    /// of its work.
    func fixedShares(_ plan: Plan, _ cost: ElementCost) -> [Double] {
        plan.segments.map { cost.fixedSeconds(leading: Double($0.firstFrame - $0.decodeFrom)) / (Double($0.frameCount) * cost.workSecondsPerFrame) }
    }

    /// x264 veryfast at 720p as measured here: 16 ms start-up, 1.5 ms to decode a frame, 11.3 ms of work per frame.
    let x264 = ElementCost(startupSeconds: 0.016, decodeSecondsPerFrame: 0.0015, workSecondsPerFrame: 0.0113)

    @Test("--jobs 64 plans 64-way when the start-up is cheap: one segment per job, every fixed cost under 2 % of its work")
    func plansForItsJobs() {
        var s = TranscodeSettings()
        s.jobs = 64
        let plan = Plan(index: sixMinutes(), settings: s, cost: x264)
        #expect(plan.segments.count == 64, "\(plan.reason)")
        #expect(fixedShares(plan, x264).allSatisfy { $0 <= Plan.fixedCostShare }, "\(fixedShares(plan, x264))")
        #expect(plan.segments.allSatisfy { $0.decodeFrom == $0.firstFrame }, "cuts between keyframes would cost their leading frames")
        #expect(plan.reason.contains("start-up 16 ms") && plan.reason.contains("under 2 % of its work"), "\(plan.reason)")
        let (span, perfect) = makespan(plan, jobs: 64)
        #expect(perfect / span >= 0.9, "\(plan.segments.map(\.frameCount))")
        // The same 64 jobs planned for 2: the shrinking plan of old.
        s.jobs = 2
        let two = Plan(index: sixMinutes(), settings: s, cost: x264)
        #expect(two.segments.count < 30 && two.reason.contains("what is left"), "\(two.reason)")
    }

    @Test("a worker's process start counts: segments stay long enough that it is under 2 % of their work")
    func workerStartLengthensSegments() {
        var s = TranscodeSettings()
        s.jobs = 64
        var remote = x264
        remote.processSeconds = 0.08
        let plan = Plan(index: sixMinutes(), settings: s, cost: remote)
        // (16 + 80) ms ÷ (2 % × 11.3 ms) = 425 frames, 14.2 s: at most 25 segments of 6 minutes.
        #expect(plan.segments.count > 1 && plan.segments.count <= 25, "\(plan.reason)")
        #expect(plan.segments.allSatisfy { $0.frameCount >= 425 }, "\(plan.segments.map(\.frameCount))")
        // As many as fit, of about equal length (within a GOP): no long last segment for the last worker alone.
        let frames = plan.segments.map(\.frameCount)
        #expect(frames.count >= 20 && frames.max()! - frames.min()! <= 60, "\(frames)")
        #expect(fixedShares(plan, remote).allSatisfy { $0 <= Plan.fixedCostShare })
        #expect(plan.reason.contains("worker start 80 ms"), "\(plan.reason)")
    }

    @Test("cuts between keyframes are made only where the frames they decode first stay within the 2 %")
    func leadingFramesCost() {
        var s = TranscodeSettings()
        s.jobs = 2
        // 10 s at 25 fps, 2 s GOPs: at keyframes five 2 s segments leave a worker idle; cut between them, each
        // segment decodes 25 frames more on average.
        let cheap = ElementCost(startupSeconds: 0.001, decodeSecondsPerFrame: 0.0001, workSecondsPerFrame: 0.01)
        let between = Plan(index: index(frames: 250, gop: 50), settings: s, cost: cheap)
        #expect(between.reason.contains("between keyframes"), "\(between.reason)")
        #expect(fixedShares(between, cheap).allSatisfy { $0 <= Plan.fixedCostShare })
        // Decoding as dear as a tenth of the work: 25 leading frames would be 25 % of a 100-frame segment's work.
        let dear = ElementCost(startupSeconds: 0.001, decodeSecondsPerFrame: 0.001, workSecondsPerFrame: 0.01)
        let keyframes = Plan(index: index(frames: 250, gop: 50), settings: s, cost: dear)
        #expect(keyframes.segments.allSatisfy { $0.decodeFrom == $0.firstFrame }, "\(keyframes.reason)")
        #expect(fixedShares(keyframes, dear).allSatisfy { $0 <= Plan.fixedCostShare })
    }

    @Test("a start-up as dear as the whole input leaves one segment, and says why")
    func dearStartup() {
        var s = TranscodeSettings()
        s.jobs = 8
        let dear = ElementCost(startupSeconds: 2, decodeSecondsPerFrame: 0.001, workSecondsPerFrame: 0.01)
        let plan = Plan(index: index(frames: 25 * 60, gop: 25), settings: s, cost: dear)
        #expect(plan.segments.count == 1)
        #expect(plan.reason.contains("start-up 2000 ms"), "\(plan.reason)")
    }

    @Test("the minimum counts what an element costs: fixed seconds and the frames that keep them under a share")
    func elementCostArithmetic() {
        let c = ElementCost(startupSeconds: 0.02, decodeSecondsPerFrame: 0.002, workSecondsPerFrame: 0.01, processSeconds: 0.08)
        #expect(abs(c.fixedSeconds(leading: 10) - 0.12) < 1e-12)
        #expect(abs(c.minimumFrames(leading: 0, share: 0.02) - 500) < 1e-9)
        #expect(abs(c.minimumFrames(leading: 10, share: 0.02) - 600) < 1e-9)
    }
}
