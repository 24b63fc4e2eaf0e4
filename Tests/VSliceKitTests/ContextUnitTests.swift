import Foundation
import Testing
@testable import VSliceModel
@testable import VSliceSupport

@Suite("context across segments: --context-frames, the plan's context steps, the signature")
struct ContextUnitTests {
    @Test("--context-frames: ranges and single frames in order; overlapping, reversed or malformed ones refused")
    func frames() throws {
        let spans = try ContextSettings.parseFrames("0-24,30,300-310")
        #expect(spans == [FrameSpan(first: 0, last: 24), FrameSpan(first: 30, last: 30), FrameSpan(first: 300, last: 310)])
        #expect(FrameSpan.text(spans) == "0-24,30,300-310")
        for bad in ["", "5-2", "0-4,3-8", "a-b", "-3", "0-4,,6", "0-2000"] {
            #expect(throws: VSliceError.self, "\(bad)") { try ContextSettings.parseFrames(bad) }
        }
    }

    @Test("the plan's context steps: one analysis element per segment, the reduce, frames past the source refused")
    func plan() throws {
        var c = ContextSettings()
        #expect(try ContextPlan.make(c, segments: 3, frameCount: 100) == nil)
        c.analyze = ProcessorSettings(command: "a")
        c.reduce = ProcessorSettings(command: "r")
        c.frames = [FrameSpan(first: 0, last: 9)]
        #expect(try ContextPlan.make(c, segments: 3, frameCount: 100) == ContextPlan(analyses: [0, 1, 2], reduces: true, frames: c.frames))
        #expect(throws: VSliceError.self) { try ContextPlan.make(c, segments: 3, frameCount: 9) }
    }

    @Test("an edited analyzer or reducer is named in the settings' difference; a reducer without an analyzer is refused")
    func signature() throws {
        var s = TranscodeSettings()
        s.process = ProcessorSettings(command: "p")
        var c = ContextSettings()
        c.analyze = ProcessorSettings(command: "python3 a.py")
        c.analyze?.fileHashes = ["a.py": "1"]
        c.reduce = ProcessorSettings(command: "python3 r.py")
        c.reduce?.fileHashes = ["r.py": "1"]
        s.context = c
        let before = s.outputSignature
        s.context?.reduce?.fileHashes = ["r.py": "2"]
        #expect(TranscodeSettings.difference(stored: before, now: s.outputSignature) == "--reduce: the file r.py changed")
        s.context?.frames = [FrameSpan(first: 0, last: 3)]
        #expect(TranscodeSettings.difference(stored: before, now: s.outputSignature)?.contains("--context-frames none → 0-3") == true)
        var lone = TranscodeSettings()
        lone.context = ContextSettings()
        lone.context?.reduce = ProcessorSettings(command: "r")
        #expect(throws: VSliceError.self) { try lone.validateValues() }
    }

    @Test("--loudness: its target parsed; the gated integral (absolute −70, relative −10 LU) and the gain limited by the true peak")
    func loudness() throws {
        #expect(try LoudnessTarget.parse("I=-16:TP=-1.5:LRA=11") == LoudnessTarget(integrated: -16, truePeak: -1.5, range: 11))
        #expect(try LoudnessTarget.parse("I=-23").truePeak == -1)
        for bad in ["", "TP=-1", "I=-16:X=2", "I=5", "I=-16:TP=3", "I=abc"] {
            #expect(throws: VSliceError.self, "\(bad)") { try LoudnessTarget.parse(bad) }
        }
        let e = LoudnessMeasure.energy
        // Two pieces: 10 blocks at −20, 10 at −26 (both kept), 5 at −40 (under the relative gate), 5 at −80 (absolute).
        let a = LoudnessMeasure(track: 0, piece: 0, blocks: Array(repeating: e(-20), count: 10) + Array(repeating: e(-80), count: 5), truePeak: 0.1)
        let b = LoudnessMeasure(track: 0, piece: 1, blocks: Array(repeating: e(-26), count: 10) + Array(repeating: e(-40), count: 5), truePeak: 0.2)
        let r = try #require(LoudnessResult.reduce([b, a], target: LoudnessTarget(integrated: -16, truePeak: -1)).first)
        let expected = LoudnessMeasure.loudness(energy: (10 * e(-20) + 10 * e(-26)) / 20)
        #expect(abs(r.integrated! - expected) < 1e-9 && r.blocks == 30)
        #expect(abs(r.truePeak - 20 * log10(0.2)) < 1e-9)
        #expect(abs(r.gainDB - (-16 - expected)) < 1e-9)
        // A peak that the gain would push over TP: the gain stops at TP.
        let loudPeak = LoudnessMeasure(track: 0, piece: 0, blocks: [e(-20)], truePeak: 0.5)
        let limited = LoudnessResult.reduce([loudPeak], target: LoudnessTarget(integrated: -10, truePeak: -1))[0]
        #expect(abs(limited.gainDB - (-1 - 20 * log10(0.5))) < 1e-9)
    }
}
