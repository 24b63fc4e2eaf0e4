import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// Issue 30 (what a model user trips over), the pieces without a transcode: the files a program runs from,
/// `--process-scale`, the size hint, text where frames belong, settings changes in the command line's words.
@Suite("issue 30: processor files, scale, size hints, text on stdout, changes in words")
struct ModelUserUnitTests {
    static func folder(_ tag: String) throws -> String {
        let dir = TestScratch.url.appendingPathComponent("mu-unit-\(tag)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ text: String, _ path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test("the folder of a script named: its modules hashed (subfolders too); byte code, logs, media and hidden files not; deps files and folders")
    func scan() throws {
        let dir = try Self.folder("scan")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in ["proc/run.py", "proc/model.py", "proc/nets/rrdb.py", "proc/__pycache__/model.cpython-311.pyc", "proc/run.log",
                  "proc/clip.mp4", "proc/.cache", "w/gain.bin", "lib/extra.py"] {
            try Self.write(f, "\(dir)/\(f)")
        }
        let set = try ProcessorFiles.scan("/usr/bin/python3 proc/run.py --scale=2", deps: ["w/gain.bin", "lib"], in: dir)
        #expect(Set(set.named.keys) == ["/usr/bin/python3", "proc/run.py", "w/gain.bin"])
        #expect(Set(set.beside.keys) == ["proc/model.py", "proc/nets/rrdb.py", "lib/extra.py"], "\(set.beside.keys)")
        #expect(set.notes.isEmpty)
        #expect(throws: VSliceError.self) { try ProcessorFiles.scan("cat", deps: ["nowhere"], in: dir) }
    }

    @Test("past 1000 files the rest are not hashed, and that is said")
    func bounded() throws {
        let dir = try Self.folder("bound")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write("x", "\(dir)/run.py")
        for i in 0..<(ProcessorFiles.folderFileLimit + 5) { try Self.write("\(i)", "\(dir)/m/\(i).py") }
        let set = try ProcessorFiles.scan("python3 \(dir)/run.py", deps: [], in: nil)
        #expect(set.beside.count == ProcessorFiles.folderFileLimit)
        #expect(set.notes.count == 1 && set.notes[0].contains("5 files beside the program were not hashed")
                && set.notes[0].contains("--process-deps"), "\(set.notes)")
    }

    @Test("a resume compares the files the task started with: one added beside the program does not count, one changed or gone does")
    func tolerantChanges() {
        let before = "crf=23.0;process=p;pfile.run.py=aa;pdir.model.py=bb"
        #expect(TranscodeSettings.difference(stored: before, now: before + ";pdir.flag=cc") == nil)
        #expect(TranscodeSettings.difference(stored: before, now: "crf=23.0;process=p;pfile.run.py=aa;pdir.model.py=zz")
                == "the file model.py (beside the program) changed")
        #expect(TranscodeSettings.difference(stored: before, now: "crf=23.0;process=p;pfile.run.py=aa")
                == "the file model.py (beside the program) is gone")
        #expect(TranscodeSettings.difference(stored: before, now: before + ";pfile.w.pth=dd") == "the command names the file w.pth now")
        #expect(TranscodeSettings.difference(stored: before + ";pid=v1", now: before + ";pid=v2")
                == "the processor says it is 'v2' (XVSLICE_ID), where it said 'v1'")
        // A batch has not heard the identity yet: the one recorded is not compared.
        #expect(TranscodeSettings.difference(stored: before + ";pid=v1", now: before, identityKnown: false) == nil)
    }

    @Test("settings changes are said with the options' names, not the signature's keys")
    func changeWords() {
        var a = TranscodeSettings(), b = TranscodeSettings()
        a.crf = 30
        b.crf = 40
        var p = ProcessorSettings(command: "cat")
        p.format = .rgb24
        b.process = p
        p.format = .y4m
        a.process = p
        let said = TranscodeSettings.changes(from: a.outputSignature, to: b.outputSignature)
        #expect(said == "--crf 30 → 40, --process-format y4m → rgb24", "\(said)")
        #expect(!said.contains("pformat") && !said.contains("-x-"))
        var c = b
        c.process?.width = 640
        c.process?.height = 360
        #expect(TranscodeSettings.changes(from: b.outputSignature, to: c.outputSignature) == "--process-size none → 640x360")
    }

    @Test("--process-scale: a factor, a size, or W:H over iw and ih; refused otherwise", arguments: [
        ("2", 320, 180, "640x360"), ("1.5", 320, 180, "480x270"), ("3/2", 320, 180, "480x270"), ("1280x720", 320, 180, "1280x720"),
        ("iw*2:ih*2", 160, 90, "320x180"), ("iw*3/2:ih+10", 100, 90, "150x100"), ("iw/2:-(-ih)", 320, 180, "160x180"),
    ])
    func scale(_ text: String, _ w: Int, _ h: Int, _ want: String) throws {
        #expect(ProcessorScale.problem(text) == nil)
        let s = try #require(ProcessorScale.size(text, width: w, height: h))
        #expect("\(s.width)x\(s.height)" == want)
    }

    @Test("--process-scale refuses what is not a scale", arguments: ["", "two", "0", "-2", "iw*2", "2:", "iw**2:ih", "1x", "iw:ih:3"])
    func badScale(_ text: String) {
        #expect(ProcessorScale.problem(text) != nil, "\(text)")
        var p = ProcessorSettings(command: "cat")
        p.format = .rgb24
        p.scale = text
        #expect(throws: VSliceError.self) { try p.validate(videoFilter: nil) }
    }

    @Test("the size hint: a whole number of frames of another size names it and the option; else what it wrote")
    func sizeHint() {
        let twice = RawSizeHint.describe(bytes: 5 * 640 * 360 * 3, frames: 5, expected: (320, 180), input: (320, 180), bytesPerPixel: 3,
                                         format: "rgb24", given: nil)
        #expect(twice.contains("691200 bytes a frame, where 320x180 rgb24 (the input's size") && twice.hasSuffix("Give --process-scale 2 (or --process-size 640x360)"))
        let half = RawSizeHint.describe(bytes: 5 * 480 * 270 * 3, frames: 5, expected: (640, 360), input: (320, 180), bytesPerPixel: 3,
                                        format: "rgb24", given: "--process-scale 2")
        #expect(half.contains("(--process-scale 2)") && half.hasSuffix("Give --process-scale 3/2 (or --process-size 480x270)"), "\(half)")
        let odd = RawSizeHint.describe(bytes: 1000, frames: 3, expected: (320, 180), input: (320, 180), bytesPerPixel: 3, format: "rgb24", given: nil)
        #expect(odd.contains("not a whole number of 320x180 rgb24 frames (172800 bytes each"))
    }

    @Test("text where frames belong: a line of text is; pixels, a header and a FRAME line are not")
    func text() {
        #expect(PipeReader.textLine(Array("loading model…\n".utf8)) == "loading model…")
        #expect(PipeReader.textLine(Array("27 frames\n".utf8), newline: true) == "27 frames")
        #expect(PipeReader.textLine(Array(repeating: UInt8(0x41), count: 300), newline: true) == nil)   // 'AAAA…' pixels, no line
        #expect(PipeReader.textLine([0x10, 0x80, 0xFF, 0x0A]) == nil)
        #expect(PipeReader.textLine(Array("12\n".utf8)) == nil)
        #expect(PipeReader.textMessage(Array("YUV4MPEG2 W2 H2".utf8), after: 0) == nil)
        #expect(PipeReader.textMessage(Array("FRAME".utf8), after: 3) == nil)
        #expect(PipeReader.textMessage(Array("done".utf8), after: 3)?.contains("'done' (after its frame 3)") == true)
    }

    @Test("XVSLICE_ID in a Y4M header is the program's identity")
    func identity() throws {
        #expect(try Y4MHeader.parse("YUV4MPEG2 W16 H16 F25:1 XVSLICE_ID=esrgan-x4-ab12").identity == "esrgan-x4-ab12")
        #expect(try Y4MHeader.parse("YUV4MPEG2 W16 H16 F25:1").identity == nil)
    }
}
