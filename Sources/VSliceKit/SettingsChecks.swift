import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

extension TranscodeSettings {
    /// Checks the settings before any work: their values, then that FFmpeg has the encoders they name.
    public func validate() throws(VSliceError) {
        try validateValues()
        try EncoderCatalog.check(videoCodec, video: true, option: "--vcodec")
        if !copyAudio { try EncoderCatalog.check(audioCodec, video: false, option: "--acodec") }
    }

    /// These settings with the content hashes of the files a `--process` command names (they are part of the
    /// output's signature: read afresh for every run, so an edited script is seen).
    public func withProcessorFiles() throws(VSliceError) -> TranscodeSettings {
        guard var p = process else { return self }
        if p.directory == nil { p.directory = FileManager.default.currentDirectoryPath }
        p.fileHashes = try ProcessorFiles.hashes(p.command, in: p.directory)
        var s = self
        s.process = p
        return s
    }
}
