import Foundation
import Testing
@testable import VSliceKit

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
}
