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

    /// These settings with the content hashes of the files a `--process` program runs from — those its command
    /// and `--process-deps` name, and those beside them (`ProcessorFiles.scan`) — which are part of the output's
    /// signature: read afresh for every run, so an edited script or module is seen. `notes`: what was not hashed.
    public func withProcessorFiles(notes: (String) -> Void = { _ in }) throws(VSliceError) -> TranscodeSettings {
        var s = self
        func hashed(_ program: ProcessorSettings?) throws(VSliceError) -> ProcessorSettings? {
            guard var p = program else { return nil }
            if p.directory == nil { p.directory = FileManager.default.currentDirectoryPath }
            let files = try ProcessorFiles.scan(p.command, deps: p.deps, in: p.directory)
            p.fileHashes = files.named
            p.folderHashes = files.beside
            files.notes.forEach(notes)
            return p
        }
        s.process = try hashed(process)
        if var c = context {
            c.analyze = try hashed(c.analyze)
            c.reduce = try hashed(c.reduce)
            s.context = c
        }
        return s
    }
}
