import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport
import CFFmpeg

@Suite("--process: Y4M headers, the cut at a processor's rate, its files and settings")
struct ProcessorUnitTests {
    @Test("Y4M headers: every field read, unknown X tags ignored, written back as read")
    func y4mHeader() throws {
        let h = try Y4MHeader.parse("YUV4MPEG2 W1280 H720 F30000:1001 Ip A1:1 C420p10 XYSCSS=420P10 XCOLORRANGE=FULL")
        #expect(h.width == 1280 && h.height == 720)
        #expect(h.rate == Ratio(num: 30000, den: 1001))
        #expect(h.aspect == Ratio(num: 1, den: 1))
        #expect(h.chroma == "420p10" && h.fullRange == true)
        #expect(h.pixelFormat == AV_PIX_FMT_YUV420P10LE)
        let again = try Y4MHeader.parse(Substring(h.line.dropLast()))
        #expect(again == h)
        // No C: 4:2:0 8-bit, as the format says.
        #expect(try Y4MHeader.parse("YUV4MPEG2 W16 H16 F25:1").pixelFormat == AV_PIX_FMT_YUV420P)
        for tag in ["420jpeg", "420mpeg2", "420paldv", "422", "444", "mono", "422p12", "444p16", "mono10"] {
            #expect(Y4MChroma.pixelFormat(tag) != nil, "\(tag)")
        }
    }

    @Test("Y4M headers that are not: refused with the reason", arguments: [
        "YUV4MPEG W16 H16", "YUV4MPEG2 H16", "YUV4MPEG2 W0 H16", "YUV4MPEG2 W16 H16 F25", "YUV4MPEG2 W16 H16 C411p10",
    ])
    func badHeaders(_ line: String) {
        #expect(throws: VSliceError.self) { try Y4MHeader.parse(Substring(line)) }
    }

    @Test("the pipe's pixel format: the source's where Y4M has it, else the nearest; yuvj as its plain twin")
    func carrier() {
        #expect(Y4MChroma.carrier(for: AV_PIX_FMT_YUV420P) == AV_PIX_FMT_YUV420P)
        #expect(Y4MChroma.carrier(for: AV_PIX_FMT_YUVJ420P) == AV_PIX_FMT_YUV420P)
        #expect(Y4MChroma.carrier(for: AV_PIX_FMT_NV12) == AV_PIX_FMT_YUV420P)
        #expect(Y4MChroma.carrier(for: AV_PIX_FMT_P010LE) == AV_PIX_FMT_YUV420P10LE)
        #expect(Y4MChroma.tag(AV_PIX_FMT_YUV420P, chromaLocation: AVCHROMA_LOC_LEFT) == "420mpeg2")
    }

    /// 25 fps in 1/12800, `n` frames, a keyframe every `gop` frames.
    func index(frames n: Int, gop: Int) -> VideoIndex {
        VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 12800), pts: (0..<n).map { Int64($0 * 512) },
                   keyframeIndices: Array(stride(from: 0, to: n, by: gop)), openGop: false,
                   endTime: Double(n) / 25, dtsStrictlyIncreasing: true, lastFrameDuration: 512)
    }

    func plan(frames n: Int, rate: Ratio, overlap: (Int, Int) = (0, 0)) -> Plan {
        var s = TranscodeSettings()
        s.split = .frames
        s.segmentFrames = 25
        s.minSplitSeconds = 0
        s.overlapBefore = overlap.0
        s.overlapAfter = overlap.1
        var p = Plan(index: index(frames: n, gop: 25), settings: s)
        p.process(with: ProcessorOutput(width: 64, height: 64, pixelFormat: "yuv420p", fullRange: nil, rate: rate),
                  index: index(frames: n, gop: 25))
        return p
    }

    @Test("a processor's plan cuts by time: each segment keeps P/Q of its frames, the buffers' share dropped")
    func cutsAtRate() throws {
        let double = plan(frames: 100, rate: Ratio(num: 2, den: 1), overlap: (2, 2))
        #expect(double.segments.map { $0.cut?.expectedFrames } == [50, 50, 50, 50])
        let first = try #require(double.segments.first?.cut), second = try #require(double.segments.dropFirst().first?.cut)
        #expect(first.keepFromPts == nil && first.keepUntilPts == 25 * 512)
        #expect(second.keepFromPts == 25 * 512 && second.keepUntilPts == 50 * 512)
        #expect(double.segments.last?.cut?.keepUntilPts == nil)
        // 5/2: ⌈n·5/2⌉ frames in all, whatever the cuts; every buffer starts at an even frame (the same phase).
        let fivehalves = plan(frames: 101, rate: Ratio(num: 5, den: 2), overlap: (3, 1))
        #expect(fivehalves.segments.compactMap { $0.cut?.expectedFrames }.reduce(0, +) == 253)
        #expect(fivehalves.segments.allSatisfy { $0.bufferStart % 2 == 0 })
        #expect(fivehalves.segments.map(\.bufferStart) == [0, 22, 46, 72, 96])
        #expect(fivehalves.segments.allSatisfy { $0.decodeFrom <= $0.bufferStart })
    }

    @Test("verify's expected times at a rate: every frame split evenly, the last up to the end")
    func spread() {
        let times: [Int64] = [0, 100, 300]
        #expect(Verifier.spread(times, end: 400, rate: Ratio(num: 2, den: 1)) == [0, 50, 100, 200, 300, 350])
        // 3/2 over three frames: positions 0, 2/3, 4/3, 2, 8/3.
        let t = Verifier.spread(times, end: 400, rate: Ratio(num: 3, den: 2))
        #expect(t.count == 5)
        #expect(abs(t[1] - 200.0 / 3) < 1e-9 && abs(t[2] - (100 + 200.0 / 3)) < 1e-9 && t[3] == 300)
    }

    @Test("the files a command names: words and --opt=FILE values that are regular files, quotes honoured")
    func namedFiles() throws {
        let dir = TestScratch.url.appendingPathComponent("vs-pfiles-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = dir.appendingPathComponent("my script.py").path, weights = dir.appendingPathComponent("w.bin").path
        try "print(1)\n".write(toFile: script, atomically: true, encoding: .utf8)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: weights))
        let command = "python3 '\(script)' --weights=\(weights) --scale 2 \(dir.path) | cat"
        #expect(ProcessorFiles.paths(in: command) == [script, weights])
        let hashes = try ProcessorFiles.hashes(command)
        #expect(hashes[weights] == "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81")
        var p = ProcessorSettings(command: command)
        p.fileHashes = hashes
        try ProcessorFiles.check(p)
        try "print(2)\n".write(toFile: script, atomically: true, encoding: .utf8)
        #expect(throws: VSliceError.self) { try ProcessorFiles.check(p) }
    }

    @Test("processor settings: in the output signature with its files; bad values refused")
    func settings() throws {
        var s = TranscodeSettings()
        let plain = s.outputSignature
        s.process = ProcessorSettings(command: "python3 up.py")
        let with = s.outputSignature
        #expect(with != plain && with.contains("process=python3 up.py"))
        s.process?.fileHashes = ["up.py": "ab"]
        #expect(s.outputSignature != with)
        try s.validate()
        for bad: (inout ProcessorSettings) -> Void in [{ $0.rate = Ratio(num: 0, den: 1) }, { $0.rate = Ratio(num: 2001, den: 1) },
                                                      { $0.width = 64 }, { $0.width = 8; $0.height = 8; $0.format = .rgb24 },
                                                      { $0.width = 64; $0.height = 64 }, { $0.command = " " }] {
            var t = s
            bad(&t.process!)
            #expect(throws: VSliceError.self) { try t.validate() }
        }
        var frac = s
        frac.process?.rate = Ratio(num: 5, den: 2)
        try frac.validate()
        frac.videoFilter = "hqdn3d"
        #expect(throws: VSliceError.self) { try frac.validate() }
        var gpus = TranscodeSettings()
        gpus.gpus = ["0"]
        #expect(throws: VSliceError.self) { try gpus.validate() }
    }

    @Test("the processor's environment: the segment, its buffers, the GPU given or the scheduler's")
    func environment() {
        let idx = index(frames: 100, gop: 25)
        var s = TranscodeSettings()
        s.split = .frames
        s.segmentFrames = 25
        s.minSplitSeconds = 0
        s.overlapBefore = 2
        s.overlapAfter = 3
        let plan = Plan(index: idx, settings: s)
        var a = SegmentAttempt(task: "t1", input: "/in.mp4", identity: nil, index: idx, plan: plan, segment: plan.segments[1],
                               settings: s, workDir: "/w", partPath: "/w/p", gpu: "1", environment: ["PATH": "/bin"])
        let env = a.processorEnvironment
        #expect(env["VSLICE_SEGMENT"] == "1" && env["VSLICE_SEGMENTS"] == "4" && env["VSLICE_TASK"] == "t1")
        #expect(env["VSLICE_FIRST_FRAME"] == "25" && env["VSLICE_FRAMES"] == "25")
        #expect(env["VSLICE_BUFFER_BEFORE"] == "2" && env["VSLICE_BUFFER_AFTER"] == "3")
        #expect(env["VSLICE_GPU"] == "1" && env["CUDA_VISIBLE_DEVICES"] == "1" && env["PATH"] == "/bin")
        a.gpu = nil
        a.environment = ["CUDA_VISIBLE_DEVICES": "3"]
        #expect(a.processorEnvironment["VSLICE_GPU"] == "3")
    }
}

@Suite("the work order stays small")
struct WorkOrderSizeTests {
    @Test("a 2-hour 60 fps input planned for 64 jobs: task.json is a few kB (frame times as runs), read back equal")
    func twoHours() throws {
        let n = 2 * 3600 * 60
        let index = VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 15360), pts: (0..<n).map { Int64($0) * 256 },
                               keyframeIndices: Array(stride(from: 0, to: n, by: 120)), openGop: false,
                               endTime: 7200, dtsStrictlyIncreasing: true, lastFrameDuration: 256)
        var s = TranscodeSettings()
        s.jobs = 64
        let plan = Plan(index: index, settings: s)
        #expect(plan.segments.count >= 64)
        let order = WorkOrder(task: "t", input: "/in.mp4", fingerprint: "f", settings: s, plan: plan, index: index, stallTimeout: 300)
        let data = try JSONEncoder().encode(order)
        // The plain list alone was 3.9 MB (measured: 3,885,969 bytes); now the plan's 565 segments are most of it
        // (139 kB in all, the index 211 bytes).
        let parts = (try JSONEncoder().encode(index).count, try JSONEncoder().encode(plan).count, plan.segments.count)
        #expect(data.count < 200_000, "\(data.count) bytes: index \(parts.0), plan \(parts.1) for \(parts.2) segments")
        let back = try JSONDecoder().decode(WorkOrder.self, from: data)
        #expect(back.index.pts == index.pts)
        #expect(back.index.keyframeIndices == index.keyframeIndices)
        // A VFR source: runs of its own rhythm, read back exactly.
        var vfr = index
        vfr.pts = (0..<5000).map { Int64($0) * 256 + ($0 % 7 == 0 ? 17 : 0) }
        vfr.keyframeIndices = [0, 1000, 2500]
        let again = try JSONDecoder().decode(VideoIndex.self, from: try JSONEncoder().encode(vfr))
        #expect(again.pts == vfr.pts && again.keyframeIndices == vfr.keyframeIndices)
        // Written by the previous version (a plain list): still read.
        let old = #"{"streamIndex":0,"timeBase":"1/25","pts":[0,1,2,5],"keyframeIndices":[0,2],"openGop":false,"endTime":0.24,"dtsStrictlyIncreasing":true,"lastFrameDuration":1}"#
        let legacy = try JSONDecoder().decode(VideoIndex.self, from: Data(old.utf8))
        #expect(legacy.pts == [0, 1, 2, 5] && legacy.keyframeIndices == [0, 2])
    }
}
