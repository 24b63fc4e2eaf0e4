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
}
