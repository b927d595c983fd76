"""Drives lookout's status page in headless Chromium (Selenium + Debian's chromedriver).

Usage: console.py URL SCREENSHOT
Loads URL at a phone's width (375 px), checks the page has no JavaScript console errors
and at least one sparkline, clicks the first "send again" button of a dead letter, and
saves a screenshot. Prints one JSON line: {"errors": [...], "sparklines": N,
"clicked": bool, "after": "<url after the click>"}.
"""

import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main() -> None:
    url, screenshot = sys.argv[1], sys.argv[2]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.set_window_size(375, 1400)
        driver.get(url)
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        sparklines = len(driver.find_elements(By.CSS_SELECTOR, "svg.spark polyline"))
        width = driver.execute_script("return document.documentElement.clientWidth")
        buttons = driver.find_elements(
            By.CSS_SELECTOR, 'form[action="-/outbox/redrive"] input[name="id"] ~ button'
        )
        clicked = False
        if buttons:
            buttons[0].click()
            clicked = True
        after = driver.current_url
        errors += [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        driver.save_screenshot(screenshot)
        print(json.dumps({
            "errors": errors,
            "sparklines": sparklines,
            "clicked": clicked,
            "after": after,
            "width": width,
        }))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
