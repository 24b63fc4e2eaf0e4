import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

@Suite("progress model and line, option checks")
struct UXUnitTests {
    @Test("progress: kept frames, a failed attempt taken back, segments, resume counts")
    func progressBookkeeping() {
        var m = ProgressModel()
        m.apply(.alreadyDone(segments: 2), now: 0)
        m.apply(.planned(totalFrames: 400, segments: 4, framesAlreadyDone: 200), now: 0)
        #expect(m.segmentsDone == 2 && m.done == 200 && m.fraction == 0.5)
        m.apply(.segmentStarted(index: 2), now: 0)
        m.apply(.framesProcessed(segment: 2, frames: 60), now: 1)
        m.apply(.segmentFailed(index: 2, error: "x"), now: 2)
        #expect(m.done == 200 && m.running == 0)
        #expect(m.processed == 60, "the work rate keeps the failed attempt's frames")
        m.apply(.segmentStarted(index: 2), now: 2)
        m.apply(.framesProcessed(segment: 2, frames: 100), now: 3)
        m.apply(.segmentDone(index: 2, frames: 100), now: 3)
        #expect(m.done == 300 && m.segmentsDone == 3 && m.running == 0)
    }

    @Test("progress: no rate before the warm-up; the rate is that of the last window, not of an early burst")
    func progressRate() {
        var m = ProgressModel()
        m.apply(.planned(totalFrames: 10_000, segments: 1, framesAlreadyDone: 0), now: 0)
        #expect(m.fps(now: 0) == nil && m.eta(now: 0) == nil)
        m.apply(.segmentStarted(index: 0), now: 0)
        // A burst of 500 frames in the first second, then 10 fps for 60 s.
        m.apply(.framesProcessed(segment: 0, frames: 500), now: 0.5)
        #expect(m.fps(now: 1) == nil)
        var t = 1.0
        while t <= 61 {
            m.apply(.framesProcessed(segment: 0, frames: 1), now: t)
            t += 0.1
        }
        let fps = m.fps(now: 61) ?? 0
        #expect(abs(fps - 10) < 1, "fps \(fps)")
        let eta = m.eta(now: 61) ?? 0
        #expect(abs(eta - Double(10_000 - m.done) / 10) < 60, "eta \(eta)")
    }

    func figures(name: String, fraction: Double = 0.42) -> ProgressText.Figures {
        var m = ProgressModel()
        m.apply(.planned(totalFrames: 123_456, segments: 37, framesAlreadyDone: Int(123_456 * fraction)), now: 0)
        m.apply(.segmentStarted(index: 0), now: 0)
        m.apply(.framesProcessed(segment: 0, frames: 1000), now: 5)
        return ProgressText.Figures(name: name, model: m, now: 5)
    }

    @Test("the bar line never reaches the terminal's last column, at any width, with any name")
    func barFits() {
        let names = ["a.mp4", String(repeating: "very_long_name_", count: 12) + ".mkv", "映画のタイトルがとても長い場合のファイル名.mp4",
                     "e\u{301}te\u{301}.mov", ""]
        for name in names {
            for width in 1...220 {
                let line = ProgressText.bar(figures(name: name), width: width)
                #expect(ProgressText.columns(line) <= max(1, width - 1), "\(width): \(line)")
            }
            // Wide enough: the whole name, the ETA and the segment count are there.
            let wide = ProgressText.bar(figures(name: name), width: 300)
            #expect((name.isEmpty || wide.contains(name)) && wide.contains("ETA") && wide.contains("segments 0/37"))
        }
        // In a batch: file i of N and the batch's ETA, still on one line at any width.
        var inBatch = figures(name: "clip_0042.mp4")
        (inBatch.file, inBatch.files, inBatch.batchEta) = (42, 340, 7384)
        for width in 1...220 {
            let line = ProgressText.bar(inBatch, width: width)
            #expect(ProgressText.columns(line) <= max(1, width - 1), "\(width): \(line)")
            if width >= 60 { #expect(line.contains("file 42/340"), "\(width): \(line)") }
        }
        #expect(ProgressText.bar(inBatch, width: 200).contains("file 42/340, batch ETA 2:03:04"))
        #expect(ProgressText.plain(inBatch).hasSuffix("file 42/340, batch ETA 2:03:04"))
        let short = ProgressText.bar(figures(name: String(repeating: "x", count: 100) + ".mp4"), width: 60)
        #expect(short.contains("…") && short.contains(".mp4"), "the name is shortened first, keeping its end: \(short)")
        #expect(short.contains("%"))
    }

    @Test("placeholders before the rate is known; one segment is singular")
    func placeholders() {
        var m = ProgressModel()
        m.apply(.planned(totalFrames: 100, segments: 1, framesAlreadyDone: 0), now: 0)
        let line = ProgressText.plain(ProgressText.Figures(name: "a.mp4", model: m, now: 0))
        #expect(line.contains("-- fps") && line.contains("ETA --:--"), "\(line)")
        #expect(line.contains("segment 0/1") && !line.contains("segments"), "\(line)")
        #expect(ProgressText.duration(3725) == "1:02:05" && ProgressText.duration(.infinity) == "--:--")
    }

    @Test("settings: ranges per encoder and for every number, --crf with --vbitrate refused")
    func settingsRanges() {
        func refused(_ change: (inout TranscodeSettings) -> Void) -> String? {
            var s = TranscodeSettings()
            change(&s)
            do throws(VSliceError) { try s.validate(); return nil } catch { return error.kind == .usage ? error.reason : "kind \(error.kind)" }
        }
        #expect(refused { _ in } == nil)
        #expect(refused { $0.crf = 51 } == nil)
        #expect(refused { $0.crf = 51.5 }?.contains("0 to 51") == true)
        #expect(refused { $0.videoCodec = "libsvtav1"; $0.crf = 63 } == nil)
        #expect(refused { $0.videoCodec = "libvpx-vp9"; $0.crf = 64 }?.contains("0 to 63") == true)
        #expect(refused { $0.crf = -5 } != nil)
        #expect(refused { $0.crf = .nan } != nil)
        #expect(refused { $0.crf = 20; $0.videoBitrate = 2_000_000 }?.contains("give one") == true)
        for bad: (inout TranscodeSettings) -> Void in [
            { $0.jobs = 0 }, { $0.jobs = .max }, { $0.threads = 0 }, { $0.threads = .max },
            { $0.segmentSeconds = .nan }, { $0.segmentSeconds = .infinity }, { $0.segmentSeconds = 1e-300 }, { $0.segmentSeconds = -1 },
            { $0.split = .frames; $0.segmentFrames = 0 }, { $0.segmentFrames = -1 }, { $0.segmentFrames = .max },
            { $0.minSplitSeconds = .nan }, { $0.minSplitSeconds = -1 }, { $0.minSplitSeconds = .infinity },
            { $0.overlapBefore = .max }, { $0.overlapAfter = -1 }, { $0.videoBitrate = 0 }, { $0.videoBitrate = .max },
            { $0.audioBitrate = 0 }, { $0.audioBitrate = .max },
            { $0.audioPieceSeconds = .nan }, { $0.audioPieceSeconds = -1 }, { $0.audioPieceSeconds = 0.05 }, { $0.audioPieceSeconds = .infinity },
        ] {
            #expect(refused(bad) != nil)
        }
        #expect(refused { $0.audioPieceSeconds = 0 } == nil)
        #expect(refused { $0.audioPieceSeconds = 2.5 } == nil)
        #expect(refused { $0.videoCodec = "h264" }?.contains("did you mean libx264") == true)
        #expect(refused { $0.audioCodec = "libx264" }?.contains("not an audio encoder") == true)
    }

    @Test("encoder check: good settings pass, a bad preset, CRF or codec option is named")
    func encoderCheck() throws {
        try EncoderCheck.check(TranscodeSettings())
        var s = TranscodeSettings()
        s.preset = "fastest"
        do { try EncoderCheck.check(s); Issue.record("a bad preset passed") } catch {
            #expect(error.kind == .usage && error.reason.contains("--preset fastest"), "\(error)")
        }
        s = TranscodeSettings()
        s.codecOptions = ["tune": "film", "profile": "nonsense"]
        do { try EncoderCheck.check(s); Issue.record("a bad profile passed") } catch {
            #expect(error.reason.contains("profile=nonsense") && !error.reason.contains("tune"), "\(error)")
        }
        s = TranscodeSettings()
        s.codecOptions = ["no-such-thing": "1"]
        do { try EncoderCheck.check(s); Issue.record("an unknown option passed") } catch {
            #expect(error.reason.contains("has no option 'no-such-thing'"), "\(error)")
        }
    }

    @Test("batch sniffing: text, pictures and audio are not videos; videos and files named like videos are")
    func sniff() throws {
        let dir = TestScratch.url.appendingPathComponent("vslice-sniff-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures")
        let text = dir.appendingPathComponent("notes.txt").path
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: text))
        #expect(MediaSniff.whyNotVideo(text) != nil)
        let empty = dir.appendingPathComponent("empty.dat").path
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        #expect(MediaSniff.whyNotVideo(empty) != nil)
        #expect(MediaSniff.whyNotVideo(fixtures.appendingPathComponent("bad_audio_only.m4a").path) == "no video stream")
        #expect(MediaSniff.whyNotVideo(fixtures.appendingPathComponent("h264_aac.mp4").path) == nil)
        // A video under a name that does not say so is still a video.
        let renamed = dir.appendingPathComponent("clip.bin2").path
        try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent("surround51.mkv").path, toPath: renamed)
        #expect(MediaSniff.whyNotVideo(renamed) == nil)
        // Damaged but named like a video: reported by the transcode, not skipped.
        #expect(MediaSniff.whyNotVideo(fixtures.appendingPathComponent("bad_random.mp4").path) == nil)
    }
}
