import Foundation
import Testing
@testable import VSliceKit
@testable import VSliceModel
@testable import VSliceSupport

/// The plan with a processor's cost counted: its start-up beside the encoder's, its work beside the encoder's.
@Suite("the plan counts the processor")
struct ProcessorCostTests {
    /// 25 fps in 1/12800, `n` frames, a keyframe every `gop` frames.
    func index(frames n: Int, gop: Int) -> VideoIndex {
        VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 12800), pts: (0..<n).map { Int64($0 * 512) },
                   keyframeIndices: Array(stride(from: 0, to: n, by: gop)), openGop: false,
                   endTime: Double(n) / 25, dtsStrictlyIncreasing: true, lastFrameDuration: 512)
    }

    /// x264 at 160x90 as measured here (15 ms start-up, 0.3 ms a frame decoded, 1.3 ms of work a frame), and the
    /// Real-ESRGAN x2 model through ncnn on the CPU (0.5 s to start, 0.18 s a frame).
    let encoder = ElementCost(startupSeconds: 0.015, decodeSecondsPerFrame: 0.0003, workSecondsPerFrame: 0.0013)
    let model = ProcessorCost(startupSeconds: 0.5, secondsPerFrame: 0.18, framesTimed: 4)

    func settings(jobs: Int) -> TranscodeSettings {
        var s = TranscodeSettings()
        s.jobs = jobs
        s.process = ProcessorSettings(command: "model")
        return s
    }

    func withModel(persistent: Bool = false) -> ElementCost {
        var c = encoder
        c.processor = model
        c.processor?.persistent = persistent
        return c
    }

    @Test("a 5 s clip of a slow model on 2 jobs is split (the encoder's cost alone keeps it whole), each fixed cost under 10 % of its work")
    func fiveSecondsSplit() {
        let idx = index(frames: 125, gop: 25)
        let alone = Plan(index: idx, settings: settings(jobs: 2), cost: encoder)
        #expect(alone.segments.count == 1, "\(alone.reason)")
        let c = withModel()
        let plan = Plan(index: idx, settings: settings(jobs: 2), cost: c)
        #expect(plan.segments.count >= 2, "\(plan.reason)")
        for seg in plan.segments {
            let fixed = c.fixedSeconds(leading: Double(seg.firstFrame - seg.decodeFrom))
            #expect(fixed <= FixedCostMinimum.idleSlotShare * Double(seg.frameCount) * c.totalSecondsPerFrame + 1e-9,
                    "segment \(seg.index): \(seg.frameCount) frames")
        }
        #expect(plan.reason.contains("the processor's 500 ms") && plan.reason.contains("1.3 + 180 ms of work per frame"), "\(plan.reason)")
    }

    @Test("63 s for --jobs 64 with 1 s keyframes: the segment count the scaling model predicts fastest (none of --split frames' is faster), said why")
    func manyJobs() {
        let idx = index(frames: 25 * 63, gop: 25)
        let s = settings(jobs: 64)
        for c in [withModel(), withModel(persistent: true)] {
            let plan = Plan(index: idx, settings: s, cost: c)
            #expect(plan.segments.count >= 60, "\(plan.segments.count): \(plan.reason)")
            #expect(plan.reason.contains("the scaling model (vslice report's)") && plan.reason.contains("for 64 workers"), "\(plan.reason)")
            let mine = Plan.predictedSeconds(starts: plan.segments.map(\.firstFrame), index: idx, settings: s, cost: c)
            // Every cut at exact frame counts, as --split frames makes it, is predicted no faster.
            for k in 5...200 {
                var f = s
                f.split = .frames
                f.segmentFrames = k
                let other = Plan(index: idx, settings: f).segments.map(\.firstFrame)
                #expect(mine <= Plan.predictedSeconds(starts: other, index: idx, settings: s, cost: c) + 1e-9, "\(k) frames a segment")
            }
        }
        // Where the rules make two segments per job or more (a long input), their shrinking segments stay.
        let long = Plan(index: index(frames: 25 * 3600, gop: 25), settings: s, cost: withModel())
        #expect(long.segments.count >= 128, "\(long.segments.count): \(long.reason)")
        #expect(long.segments.allSatisfy { $0.frameCount >= 142 }, "\(long.reason)")
        #expect(long.reason.contains("under 2 % of its work") && !long.reason.contains("scaling model"), "\(long.reason)")
    }

    @Test("the plan's prediction is the scaling model's replay: one wave of equal segments is its fixed cost and work; kept loaded, the start-up once per worker")
    func predictionIsTheModel() {
        let idx = index(frames: 100, gop: 25)
        let s = settings(jobs: 4)
        let starts = [0, 25, 50, 75]
        let each = Plan.predictedSeconds(starts: starts, index: idx, settings: s, cost: withModel())
        #expect(abs(each - (0.515 + 25 * 0.1813)) < 1e-9, "\(each)")
        // Eight segments on four workers: two waves; per segment the start-up twice, kept loaded once.
        let eight = Array(stride(from: 0, to: 100, by: 13)).prefix(8).map { $0 }
        let twice = Plan.predictedSeconds(starts: eight, index: idx, settings: s, cost: withModel())
        let once = Plan.predictedSeconds(starts: eight, index: idx, settings: s, cost: withModel(persistent: true))
        #expect(abs(twice - once - 0.5) < 1e-9, "\(twice) \(once)")
    }

    @Test("a processor that stays loaded pays its start-up once per job slot: it does not lengthen the segments")
    func persistentStartup() {
        let c = withModel(persistent: true)
        #expect(abs(c.fixedSeconds(leading: 0) - 0.015) < 1e-12)
        #expect(abs(withModel().fixedSeconds(leading: 0) - 0.515) < 1e-12)
        let plan = Plan(index: index(frames: 25 * 63, gop: 25), settings: settings(jobs: 2), cost: c)
        let perSegment = Plan(index: index(frames: 25 * 63, gop: 25), settings: settings(jobs: 2), cost: withModel())
        #expect(plan.segments.count > perSegment.segments.count, "\(plan.reason) / \(perSegment.reason)")
        #expect(c.summary.contains("1.3 + 180 ms") && !c.summary.contains("the processor's 500 ms"), "\(c.summary)")
    }

    @Test("VSLICE_PROCESSOR_COST gives the processor's cost; malformed, it is ignored")
    func given() {
        #expect(ProcessorCost.given(environment: ["VSLICE_PROCESSOR_COST": "0.5,0.18"])
                == ProcessorCost(startupSeconds: 0.5, secondsPerFrame: 0.18, framesTimed: 0))
        for bad in ["0.5", "0.5,x", "-1,0.1", "1,2,3", ""] {
            #expect(ProcessorCost.given(environment: ["VSLICE_PROCESSOR_COST": bad]) == nil, "\(bad)")
        }
        #expect(ProcessorCost.given(environment: [:]) == nil)
    }

    @Test("--process-persistent needs y4m and no --vf (exit 2 before any work)")
    func persistentNeedsY4M() {
        var p = ProcessorSettings(command: "model")
        p.persistent = true
        #expect((try? p.validate(videoFilter: nil)) != nil)
        #expect(throws: VSliceError.self) { try p.validate(videoFilter: "scale=64:36") }
        p.format = .rgb24
        #expect(throws: VSliceError.self) { try p.validate(videoFilter: nil) }
    }
}
