import Foundation
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

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

    @Test("a code FFmpeg has no words for is 'FFmpeg error N', not 'Error number N occurred'")
    func unknownFFmpegCode() {
        #expect(ffErrorString(-50531338) == "FFmpeg error -50531338")
        #expect(ffErrorString(-2) == "No such file or directory")
    }

    @Test("a Foundation or system error becomes the system's words, one line, never NSError's user info")
    func plainReasons() throws {
        // A folder that cannot be made: the underlying POSIX error's words.
        do {
            try FileManager.default.createDirectory(atPath: "/proc/vslice-no/x", withIntermediateDirectories: true)
            Issue.record("created a folder under /proc")
        } catch {
            let reason = plainReason(error)
            #expect(!reason.contains("Domain") && !reason.contains("UserInfo") && !reason.contains("\n"), "\(reason)")
            #expect(reason == String(cString: strerror(Int32((error as NSError).userInfo[NSUnderlyingErrorKey]
                .flatMap { $0 as? any Error }.map { ($0 as NSError).code } ?? -1))), "\(reason)")
        }
        #expect(plainReason(CocoaError(.fileReadNoSuchFile)) == "No such file or directory")
        #expect(plainReason(NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC))) == "No space left on device")
        struct Order: Decodable { var plan: Int }
        do {
            _ = try JSONDecoder().decode(Order.self, from: Data("{}".utf8))
            Issue.record("decoded an order without its plan")
        } catch {
            #expect(plainReason(error) == "no key 'plan'")
        }
    }

    @Test("a job store that cannot be written names the variable that chose its place")
    func jobStoreAdvice() {
        let env = ["VSLICE_HOME": "/sys/vsh", "XDG_DATA_HOME": "/x"]
        #expect(JobStore.whereToMove("/sys/vsh/vslice.db", environment: env) == "set VSLICE_HOME to a writable folder, or use --db PATH")
        #expect(JobStore.whereToMove("/x/vslice/vslice.db", environment: ["XDG_DATA_HOME": "/x"])
                == "set XDG_DATA_HOME to a writable folder, or use --db PATH")
        #expect(JobStore.whereToMove("/elsewhere/my.db", environment: env) == "use --db PATH")
    }
}
