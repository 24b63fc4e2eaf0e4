import CFFmpeg
import Foundation

/// Output containers by file extension.
public enum Container {
    public static func format(forPath path: String) -> String? {
        switch (path as NSString).pathExtension.lowercased() {
        case "mp4", "m4v": "mp4"
        case "mov": "mov"
        case "mkv": "matroska"
        default: nil
        }
    }

    /// Refuses, before any work, an encoder whose codec the output container cannot hold.
    static func checkCodecs(format: String, settings: TranscodeSettings, output: String) throws(VSliceError) {
        guard let muxer = av_guess_format(format, nil, nil) else { return }
        for (name, option) in [(settings.videoCodec, "--vcodec"), (settings.audioCodec, "--acodec")] {
            guard let codec = avcodec_find_encoder_by_name(name) else { continue }
            if avformat_query_codec(muxer, codec.pointee.id, FF_COMPLIANCE_NORMAL) == 0 {
                throw VSliceError(.usage, "check options", path: output,
                                  reason: "the \(String(cString: muxer.pointee.name)) container cannot hold \(name) (\(option)); choose another codec or container")
            }
        }
    }
}
