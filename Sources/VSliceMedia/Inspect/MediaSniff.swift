import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// Tells, cheaply (container header and stream info, nothing indexed), whether a file in a batch folder is
/// a video at all, so that `notes.txt` or `cover.jpg` beside the videos is skipped rather than failed.
public enum MediaSniff {
    /// Extensions that name video containers: such a file is always a batch input (if it is damaged, the
    /// batch reports it as failed instead of skipping it).
    public static let videoExtensions: Set<String> = [
        "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "vob", "flv", "wmv", "asf",
        "3gp", "3g2", "ogv", "mxf", "dv", "y4m", "nut", "f4v", "rm", "rmvb", "divx", "qt",
    ]

    /// Demuxers that turn text or a still picture into a "video stream".
    package static let stillFormats: Set<String> = ["tty", "image2", "bin", "xbin", "adf", "idf"]

    /// Nil when `path` is worth transcoding; else why it is not a video ("not a media file", "no video
    /// stream", "a still image"). Files named like videos are always worth it (their errors are reported).
    public static func whyNotVideo(_ path: String) -> String? {
        if videoExtensions.contains((path as NSString).pathExtension.lowercased()) { return nil }
        let input: InputFile
        do throws(VSliceError) { input = try InputFile(path: path) } catch {
            // Unreadable is not the same as not media: report those.
            if error.reason.contains("permission") { return nil }
            return error.reason.contains("empty") ? "empty file" : "not a media file"
        }
        let format = String(cString: input.ctx.pointee.iformat.pointee.name)
        if stillFormats.contains(format) || format.hasSuffix("_pipe") { return "not a video (\(format))" }
        guard let v = input.bestStream(AVMEDIA_TYPE_VIDEO) else { return "no video stream" }
        if input.stream(v).pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0 { return "no video stream (only a cover picture)" }
        return nil
    }
}
