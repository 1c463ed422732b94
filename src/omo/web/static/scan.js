// The POS page's camera scanner: frames from the camera go through jsQR (vendored); the first
// code found fills the look-up field and submits it. Typing or a USB scanner works without it.
(function () {
  const button = document.getElementById("scan-button");
  if (!button || !navigator.mediaDevices) return;
  button.hidden = false;
  button.addEventListener("click", async function () {
    const video = document.getElementById("scan-video");
    const canvas = document.createElement("canvas");
    const field = document.querySelector("#lookup input[name=q]");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (err) {
      document.getElementById("scan-status").textContent = err.name;
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const tick = function () {
      if (video.readyState === video.HAVE_ENOUGH_DATA) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        const ctx = canvas.getContext("2d", { willReadFrequently: true });
        ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
        const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
        const code = jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        if (code && code.data) {
          stream.getTracks().forEach(function (t) { t.stop(); });
          field.value = code.data;
          document.getElementById("lookup").submit();
          return;
        }
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
})();
