import Testing
@testable import VSliceKit

@Suite("errors and exit codes")
struct ErrorTests {
    @Test("each error kind has its documented exit code")
    func exitCodes() {
        #expect(VSliceError.Kind.processing.exitCode == 1)
        #expect(VSliceError.Kind.usage.exitCode == 2)
        #expect(VSliceError.Kind.input.exitCode == 3)
        #expect(VSliceError.Kind.outputExists.exitCode == 4)
        #expect(VSliceError.Kind.resumeRefused.exitCode == 5)
        #expect(VSliceError.Kind.interrupted.exitCode == 130)
    }

    @Test("an FFmpeg failure names the operation, the file and FFmpeg's reason")
    func ffmpegMessage() {
        do {
            try ffCheck(-2, "open input", path: "/x/y.mp4", kind: .input)
            Issue.record("ffCheck accepted a negative code")
        } catch {
            #expect(error.kind == .input)
            #expect(error.description == "open input '/x/y.mp4': No such file or directory")
        }
    }
}
